// Errors: slimlm::Error carries a one-line message with context (file, tensor, shape).
// Thrown where input is read; the CLI turns it into one line on stderr and exit code 1.
// SLIMLM_ASSERT is for internal invariants only, never for user input.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace slimlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void fmt_into(std::ostringstream&) {}
template <class T, class... R>
void fmt_into(std::ostringstream& os, const T& v, const R&... r) { os << v; fmt_into(os, r...); }
}  // namespace detail

// Concatenates its arguments with operator<< into a string.
template <class... A>
std::string cat(const A&... a) { std::ostringstream os; detail::fmt_into(os, a...); return os.str(); }

template <class... A>
[[noreturn]] void fail(const A&... a) { throw Error(cat(a...)); }

[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

}  // namespace slimlm

#define SLIMLM_ASSERT(x) \
  do { if (!(x)) ::slimlm::assert_failed(#x, __FILE__, __LINE__); } while (0)
