// A progress bar on stderr for long runs: redrawn in place on a terminal, a line every 10%
// otherwise (CI logs). Quiet when disabled.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace slimlm {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();
  void update(int64_t done, const std::string& extra = "");
  void finish();
 private:
  std::string label_;
  int64_t total_, last_decile_ = -1;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace slimlm
