#include "core/progress.h"
#include <cstdio>
#include <unistd.h>

namespace slimlm {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total > 0 ? total : 1), enabled_(enabled), tty_(::isatty(2)),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { if (!finished_) finish(); }

void Progress::update(int64_t done, const std::string& extra) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double el = std::chrono::duration<double>(now - start_).count();
  const double frac = double(done) / double(total_);
  const double eta = done > 0 ? el / frac - el : 0;
  if (tty_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30, filled = int(frac * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld %3.0f%% %.0fs left %s\033[K", label_.c_str(), filled,
                 "##############################", width - filled, "", (long long)done, (long long)total_,
                 100 * frac, eta, extra.c_str());
  } else {
    const int64_t decile = int64_t(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s %lld/%lld (%.0f%%, %.0fs elapsed) %s\n", label_.c_str(), (long long)done,
                 (long long)total_, 100 * frac, el, extra.c_str());
  }
}

void Progress::finish() {
  finished_ = true;
  if (enabled_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace slimlm
