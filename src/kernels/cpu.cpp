#include "kernels/cpu.h"
#include <cstdlib>
#include <cstring>

namespace slimlm::kernels {
namespace {
bool& simd_on() {
  static bool on = !env_flag("SLIMLM_NO_SIMD") && cpu_has_avx2();
  return on;
}
}  // namespace

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
}

bool simd_enabled() { return simd_on(); }

const char* use_simd(bool on) {
  simd_on() = on && cpu_has_avx2();
  return simd_on() ? "avx2+fma" : "baseline";
}

}  // namespace slimlm::kernels
