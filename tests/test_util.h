// Test helpers: paths of real data/models (skipping with a clear message when a model is not
// fetched yet), running the CLI and capturing its output and exit code.
#pragma once
#include <gtest/gtest.h>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace slimlm::test {

inline std::string source_dir() { return SLIMLM_SOURCE_DIR; }
inline std::string shared_data(const std::string& rel) { return source_dir() + "/../shared/data/" + rel; }
inline std::string model_path(const std::string& file) { return source_dir() + "/models/" + file; }
inline const char* kSmol = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline const char* kGemma = "gemma-3-270m-q4_k_m.gguf";
inline std::string stories() { return shared_data("stories260K/stories260K.bin"); }

inline std::string temp_path(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("slimlm-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

struct CmdResult { int code; std::string out, err; };
// Runs a shell command line (without redirections) and captures stdout, stderr and the exit code.
inline CmdResult run_command(const std::string& cmd_line) {
  const std::string err_file = temp_path("stderr.txt");
  const std::string cmd = cmd_line + " 2>" + err_file;
  CmdResult r{-1, "", ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (FILE* e = std::fopen(err_file.c_str(), "rb")) {
    while ((n = std::fread(buf, 1, sizeof buf, e)) > 0) r.err.append(buf, n);
    std::fclose(e);
  }
  return r;
}
// Runs the slimlm CLI with `args` (a shell-quoted string).
inline CmdResult run_cli(const std::string& args) { return run_command(std::string(SLIMLM_CLI) + " " + args); }

// A file of token ids sampled by stories260K itself (it has no tokenizer): one 256-id story per
// seed in [first_seed, first_seed + count), each starting with BOS (1). For --calib-ids / --ids.
inline std::string stories_ids_file(const std::string& name, int first_seed, int count) {
  std::string all;
  for (int s = first_seed; s < first_seed + count; ++s) {
    const CmdResult g = run_cli("generate " + stories() + " --prompt-ids 1 -n 255 --temp 1 --seed " + std::to_string(s) + " --print-ids");
    EXPECT_EQ(g.code, 0) << g.err;
    all += "1 " + g.out + "\n";
  }
  const std::string path = temp_path(name);
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(all.c_str(), f);
  std::fclose(f);
  return path;
}

}  // namespace slimlm::test

#define SLIMLM_REQUIRE_FILE(path)                                                         \
  do {                                                                                    \
    if (!std::filesystem::exists(path))                                                   \
      GTEST_SKIP() << "missing " << (path) << " (run scripts/fetch-models.sh / see ../shared/data)"; \
  } while (0)
