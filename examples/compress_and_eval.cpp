// Compresses a model with the slimlm library and measures what it cost: perplexity of the
// original and the compressed model, KL divergence and top-1 agreement between them, a greedy
// continuation from each, and the compressed file. Uses only the public header.
//
//   compress_and_eval MODEL OUT.gguf (--ids IDS_FILE | --text TEXT_FILE) [--method M] [--param KEY=VALUE]...
//
// Defaults: --method rtn --param type=u8g32 (no calibration needed). For llama2.c models without
// a tokenizer (stories260K) give the evaluation text as token ids with --ids.
#include <slimlm/slimlm.h>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {
struct Args {
  std::string model, out, ids, text, method = "rtn";
  slimlm::api::Params params;
};

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    const bool has_value = i + 1 < argc;
    if (s == "--ids" && has_value) a.ids = argv[++i];
    else if (s == "--text" && has_value) a.text = argv[++i];
    else if (s == "--method" && has_value) a.method = argv[++i];
    else if (s == "--param" && has_value) {
      const std::string kv = argv[++i];
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) throw std::runtime_error("--param needs KEY=VALUE, not '" + kv + "'");
      a.params[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else pos.push_back(s);
  }
  if (pos.size() != 2 || a.ids.empty() == a.text.empty())
    throw std::runtime_error("usage: compress_and_eval MODEL OUT.gguf (--ids FILE | --text FILE) [--method M] [--param KEY=VALUE]...");
  a.model = pos[0];
  a.out = pos[1];
  if (a.method == "rtn" && a.params.empty()) a.params["type"] = "u8g32";
  return a;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string show(const slimlm::api::Model& m, const std::vector<int32_t>& ids) {
  if (slimlm::api::info(m).has_tokenizer) return "\"" + slimlm::api::detokenize(m, ids) + "\"";
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return "ids " + s;
}
}  // namespace

int main(int argc, char** argv) {
  namespace api = slimlm::api;
  try {
    const Args a = parse(argc, argv);
    api::Model original = api::load(a.model), small = api::load(a.model);
    const api::ModelInfo mi = api::info(original);
    std::printf("model %s: %s, %lld layers, %.2fM parameters, %.1f MiB of weights\n", a.model.c_str(), mi.arch.c_str(),
                (long long)mi.n_layer, double(mi.n_params) / 1e6, mi.weight_mib);

    std::vector<int32_t> ids;
    if (!a.ids.empty()) {
      std::istringstream in(read_file(a.ids));
      for (int32_t id; in >> id;) ids.push_back(id);
    } else {
      ids = api::tokenize(original, read_file(a.text));
    }
    std::string verb = "quantize";
    for (const std::string& m : api::methods("prune")) verb = m == a.method ? "prune" : verb;
    std::printf("%s --method %s\n", verb.c_str(), a.method.c_str());
    const std::string summary = verb == "prune" ? api::prune(small, a.method, a.params) : api::quantize(small, a.method, a.params);
    std::printf("summary %s\n", summary.c_str());
    api::save(small, a.out);
    const api::Model reloaded = api::load(a.out);

    api::EvalOptions eo;
    eo.ctx = 128;
    const api::EvalResult r = api::evaluate(reloaded, ids, eo, &original);
    std::printf("perplexity original %.4f compressed %.4f over %lld tokens\n", r.ref_ppl, r.ppl, (long long)r.n_scored);
    std::printf("kld %.6f top1 %.4f\n", r.kld_mean, r.top1_agree);

    api::GenerateOptions go;
    go.n = 16;
    const std::vector<int32_t> prompt(ids.begin(), ids.begin() + std::min<size_t>(ids.size(), 4));
    std::printf("original continues: %s\n", show(original, api::generate(original, prompt, go)).c_str());
    std::printf("compressed continues: %s\n", show(reloaded, api::generate(reloaded, prompt, go)).c_str());
    std::printf("wrote %s (%.2f MiB of weights)\n", a.out.c_str(), api::info(reloaded).weight_mib);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compress_and_eval: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
