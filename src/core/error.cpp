#include "core/error.h"
#include <cstdio>
#include <cstdlib>

namespace slimlm {
void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "slimlm: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  std::abort();
}
}  // namespace slimlm
