// One CPU-feature check and one SIMD switch for every kernel family: matmul's row tiles and
// GEMM, the integer dots and activation quantizers (qdot.h), attention, the f16 / sparse row
// kernels (sparse.h) and w8a8. Their AVX2 paths need AVX2 and FMA, and F16C for the f16
// conversions (attend_f16, f16 weight rows), so the check asks for all three.
#pragma once

namespace slimlm::kernels {

// Whether the CPU has AVX2, FMA and F16C (asked once).
bool cpu_has_avx2();
// Whether the kernels take their AVX2 paths now: the CPU has them and SIMD is switched on.
bool simd_enabled();
// Switches the AVX2 paths on (when the CPU has them) or off; returns the name of the path now in
// use ("avx2+fma" or "baseline"). Default: on, unless SLIMLM_NO_SIMD is set at start.
const char* use_simd(bool on);
// Whether the environment variable `name` is set to something other than "" or "0".
bool env_flag(const char* name);

}  // namespace slimlm::kernels
