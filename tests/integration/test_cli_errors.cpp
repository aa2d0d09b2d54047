// The CLI on bad input: every case must exit with a non-zero status below 128 (no crash, no
// signal) and print exactly one line on stderr starting "slimlm: error:". Bad models (missing,
// truncated, random bytes, absurd headers), bad flags, bad prompts and bad eval inputs.
#include "test_util.h"
#include <cstring>
#include <fstream>
#include <random>

using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string head_of(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), std::streamsize(n));
  s.resize(size_t(in.gcount()));
  return s;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char(rng() & 0xff);
  return s;
}

std::string llama2c_header(std::initializer_list<int32_t> h, size_t pad) {
  std::string s;
  for (int32_t v : h) s.append(reinterpret_cast<const char*>(&v), 4);
  return s + std::string(pad, '\0');
}

// Runs `args` and checks the error contract; `fragment` must appear in the message.
void expect_cli_error(const std::string& args, const std::string& fragment = "") {
  SCOPED_TRACE("slimlm " + args);
  const CmdResult r = run_cli(args);
  EXPECT_NE(r.code, 0);
  EXPECT_LT(r.code, 128) << "killed by signal " << r.code - 128 << "; stderr: " << r.err;
  EXPECT_TRUE(r.err.starts_with("slimlm: error:")) << "stderr: " << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.find('\n') == r.err.size() - 1) << "stderr is not one line: " << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "stderr: " << r.err;
}

}  // namespace

TEST(CliErrors, MissingOrUnreadableModels) {
  const std::string missing = temp_path("does-not-exist.gguf");
  expect_cli_error("info " + missing, "does-not-exist.gguf");
  expect_cli_error("generate " + missing + " -p hi", "does-not-exist.gguf");
  expect_cli_error("eval " + missing + " --ids " + missing, "does-not-exist.gguf");
  expect_cli_error("bench " + missing, "does-not-exist.gguf");
  expect_cli_error("convert " + missing + " -o " + temp_path("never.gguf"), "does-not-exist.gguf");

  const std::string dir = temp_path("not-a-model-dir");
  fs::create_directories(dir);
  write_file(dir + "/README.md", "hello");
  expect_cli_error("info " + dir, "config.json");
  expect_cli_error("generate " + dir + " -p hi", "config.json");

  const std::string rnd_gguf = temp_path("random.gguf"), rnd_bin = temp_path("random.bin");
  write_file(rnd_gguf, random_bytes(4096, 1));
  write_file(rnd_bin, random_bytes(4096, 2));
  expect_cli_error("info " + rnd_gguf);
  expect_cli_error("info " + rnd_bin);
  expect_cli_error("generate " + rnd_bin + " --prompt-ids 1");

  const std::string magic = temp_path("bad-magic.gguf");
  std::string m = "GGUX" + std::string("\x03\0\0\0", 4) + std::string(64, '\0');
  write_file(magic, m);
  expect_cli_error("info " + magic);
  const std::string magic_bin = temp_path("bad-magic-gguf.bin");  // GGUF-like but not GGUF, .bin name
  write_file(magic_bin, m);
  expect_cli_error("info " + magic_bin);

  const std::string empty = temp_path("empty.gguf");
  write_file(empty, "");
  expect_cli_error("info " + empty);
}

TEST(CliErrors, AbsurdLlama2cHeaders) {
  struct Case { const char* name; std::initializer_list<int32_t> h; };
  const Case cases[] = {
      {"huge-dim.bin", {1 << 30, 172, 5, 8, 4, 512, 512}},
      {"negative.bin", {64, -172, 5, 8, 4, 512, 512}},
      {"zero-heads.bin", {64, 172, 5, 0, 0, 512, 512}},
      {"int-min-vocab.bin", {64, 172, 5, 8, 4, INT32_MIN, 512}},
      {"max-everything.bin", {65536, 1 << 20, 1024, 1024, 1024, 1 << 24, 1 << 24}},  // at the limits, no overflow
      {"wrong-size.bin", {64, 172, 5, 8, 4, 512, 512}},  // plausible header, file far too short
  };
  for (const Case& c : cases) {
    const std::string p = temp_path(c.name);
    write_file(p, llama2c_header(c.h, 1024));
    expect_cli_error("info " + p);
    expect_cli_error("generate " + p + " --prompt-ids 1 -n 2");
  }
}

TEST(CliErrors, TruncatedSmolLM2) {
  SLIMLM_REQUIRE_FILE(model_path(kSmol));
  for (size_t mb : {1, 50}) {
    const std::string p = temp_path("smol-first-" + std::to_string(mb) + "MB.gguf");
    write_file(p, head_of(model_path(kSmol), mb << 20));
    ASSERT_EQ(fs::file_size(p), mb << 20);
    expect_cli_error("info " + p, p);
    expect_cli_error("generate " + p + " -p hi -n 2", p);
    fs::remove(p);
  }
}

TEST(CliErrors, BadFlags) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string s = stories();
  expect_cli_error("generate " + s + " --prompt-ids 1 --no-such-option", "--no-such-option");
  expect_cli_error("generate " + s + " --prompt-ids 1 -n abc", "abc");
  expect_cli_error("generate " + s + " --prompt-ids 1 --temp -1", "temp");
  expect_cli_error("generate " + s + " --prompt-ids 1 --top-p 2", "top-p");
  expect_cli_error("generate " + s + " --prompt-ids 1 -c 0", "ctx");
  expect_cli_error("generate " + s + " --prompt-ids 1 -t 0", "threads");
  expect_cli_error("generate", "model");
  expect_cli_error("generate --prompt-ids 1", "model");
  expect_cli_error("eval", "model");
  expect_cli_error("frobnicate " + s);
  expect_cli_error("");
  expect_cli_error("info " + s + " " + s);  // one model only
}

TEST(CliErrors, BadPrompts) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string s = stories();
  expect_cli_error("generate " + s + " --prompt-ids 1,x,3", "x");
  expect_cli_error("generate " + s + " --prompt-ids 1,999", "999");
  expect_cli_error("generate " + s + " --prompt-ids 99999999999999", "token id");
  expect_cli_error("generate " + s + " --prompt-ids -5", "");
  expect_cli_error("generate " + s + " --prompt-ids ,,,", "token id");
  expect_cli_error("generate " + s + " -p 'Once upon a time'", "tokenizer");  // llama2.c: ids only
  // Invalid UTF-8: popen runs /bin/sh (dash on Debian), which has no $'\xff' quoting, so the
  // raw bytes go inside single quotes.
  const std::string bad_utf8 = "'\xff\xfe'";
  expect_cli_error("generate " + s + " -p " + bad_utf8, "UTF-8");
  if (fs::exists(model_path(kSmol))) {
    expect_cli_error("generate " + model_path(kSmol) + " -n 2 -p " + bad_utf8, "UTF-8");
    expect_cli_error("generate " + model_path(kSmol) + " -n 2 -p 'caf\xc3' ", "UTF-8");  // cut multi-byte char
    expect_cli_error("generate " + model_path(kSmol) + " -n 2 --prompt-ids 49152", "49152");
  }
}

TEST(CliErrors, BadEvalInputs) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string s = stories();
  expect_cli_error("eval " + s, "-f");
  const std::string ids = temp_path("ids.txt"), empty = temp_path("empty-ids.txt");
  write_file(ids, "1 2 3 4 5 6 7 8");
  write_file(empty, "");
  expect_cli_error("eval " + s + " -f " + ids + " --ids " + ids, "-f");
  expect_cli_error("eval " + s + " --ids " + empty, "no token ids");
  write_file(empty, "  \n\n  ");
  expect_cli_error("eval " + s + " --ids " + empty, "no token ids");
  const std::string bad = temp_path("bad-ids.txt");
  write_file(bad, "1 2 seven 8");
  expect_cli_error("eval " + s + " --ids " + bad, "seven");
  write_file(bad, "1 2 3 999 4");
  expect_cli_error("eval " + s + " --ids " + bad, "999");
  expect_cli_error("eval " + s + " --ids " + temp_path("missing-ids.txt"), "missing-ids.txt");
  expect_cli_error("eval " + s + " --ids " + ids + " --ref " + temp_path("missing-ref.gguf"), "missing-ref.gguf");
  expect_cli_error("eval " + s + " -f " + ids, "tokenizer");  // llama2.c: text needs a tokenizer
  if (fs::exists(model_path(kSmol))) {
    expect_cli_error("eval " + model_path(kSmol) + " -f " + temp_path("missing.txt"), "missing.txt");
    const std::string latin1 = temp_path("latin1.txt");
    write_file(latin1, "caf\xe9 au lait");
    expect_cli_error("eval " + model_path(kSmol) + " -f " + latin1, "UTF-8");
  }
}

TEST(CliErrors, ConvertRefusals) {
  SLIMLM_REQUIRE_FILE(stories());
  const std::string out = temp_path("cli-convert.gguf");
  expect_cli_error("convert " + stories() + " -o " + out + " --type q9_9", "q9_9");
  expect_cli_error("convert " + stories() + " -o " + out + " --type q6_K", "q6_K");
  expect_cli_error("convert " + stories() + " --type f16", "output");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliHelp, HelpExitsZero) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* verb : {"generate", "eval", "convert", "info", "bench"}) EXPECT_NE(r.out.find(verb), std::string::npos) << verb;
  for (const char* verb : {"generate", "eval", "convert", "info", "bench"}) {
    auto v = run_cli(std::string(verb) + " --help");
    EXPECT_EQ(v.code, 0) << verb << ": " << v.err;
    EXPECT_NE(v.out.find("Example"), std::string::npos) << verb << " --help has no example:\n" << v.out;
  }
  auto g = run_cli("generate --help");
  EXPECT_NE(g.out.find("--prompt-ids"), std::string::npos);
  EXPECT_EQ(run_cli("--version").code, 0);
}
