// The one list of verbs (compression and training), methods and their parameters. The CLI
// builds its flags and --help from it, recipe files are checked against it, the drivers read
// typed values through it, and every "unknown method / flag" error lists what it holds. Method
// names are compared here only: everything else dispatches on MethodId or on the traits in
// MethodInfo.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slimlm::pipeline {

// A verb that rewrites a model: what `slimlm VERB`, a recipe step and the library's drivers run.
// Train and Distill take the same parameters and no --method; distill needs a teacher (a
// recipe's distill step defaults it to the recipe's source model).
enum class Verb { Quantize, Prune, Convert, Train, Distill };
enum class Family { Quantize, PruneUnstructured, PruneStructured, Convert };
enum class MethodId {
  Rtn, Gptq, Awq, AwqGptq, W8a8, SmoothQuant, SmoothQuantGptq, Kmeans, Nf, Qat,  // quantize
  Magnitude, Wanda, Ria, SparseGpt,                                          // prune, unstructured
  Heads, Neurons, Layers, Flap, BlockInfluence,                              // prune, structured
  Convert,                                                                   // convert (no --method)
};

struct MethodInfo {
  const char* name;
  MethodId id;
  Family family;
  const char* help;
  // Quantization traits (false elsewhere): calibration statistics, XᵀX (GPTQ rounding), AWQ
  // scales, SmoothQuant scales.
  bool calibrated = false, hessian = false, awq = false, smooth = false;
};

enum class ParamType { Flag, Int, Float, Text, Choice, Method };
struct ParamInfo {
  const char* name;           // flag name without dashes, e.g. "calib-samples"
  ParamType type;
  const char* def;            // default as text ("": none / chosen by the method)
  const char* help;
  double lo = 0, hi = -1;     // Int / Float: allowed range when lo <= hi (checked on given values)
  bool hi_open = false;       // the range is [lo, hi)
  const char* choices = "";   // Choice: the values, '|'-separated
};

struct VerbInfo {
  const char* name;
  Verb verb;
  const char* help;           // one line
  std::vector<ParamInfo> params;
};

// Every verb (quantize, prune, convert, train, distill), and one by name (nullptr: none).
const std::vector<VerbInfo>& verbs();
const VerbInfo& verb_info(Verb v);
const VerbInfo* find_verb(const std::string& name);
// "quantize, prune, convert, train, distill".
std::string verb_list();
// Train or Distill.
bool trains(Verb v);

// Every method, and the methods of one verb.
const std::vector<MethodInfo>& methods();
std::vector<const MethodInfo*> methods_of(Verb v);
const MethodInfo& method_info(MethodId id);
// The method called `name` among the verb's methods; throws Error
// "unknown --method 'x' (rtn, gptq, ...)" otherwise.
const MethodInfo& method_named(Verb v, const std::string& name);
// "rtn, gptq, awq, ..." (the verb's methods in order).
std::string method_list(Verb v);
// The --method help of a verb: one "name: help" clause per method.
std::string method_help(Verb v);
// The parameter `name` of a verb (nullptr: none).
const ParamInfo* find_param(Verb v, const std::string& name);
// A parameter's help with its default, range and choices appended (for --help).
std::string param_help(Verb v, const ParamInfo& p);

// Flag values by name without dashes ("bits" -> "4"; flags: "true"), as the CLI and recipes give them.
using Params = std::map<std::string, std::string>;

// The values of one verb's parameters, checked against the registry: unknown names are refused
// at construction (listing the valid ones); each getter returns the given value or the
// registry's default, checked for its type, range and choices (one-line Error otherwise).
class Args {
 public:
  Args(Verb v, Params given);
  Verb verb() const { return verb_; }
  const MethodInfo& method() const;           // --method (Convert: the convert pseudo-method; not Train/Distill)
  bool given(const std::string& name) const { return given_.count(name) > 0; }
  bool flag(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  uint64_t unsigned_integer(const std::string& name) const;
  double real(const std::string& name) const;
  std::string text(const std::string& name) const;  // Text and Choice values
  const Params& params() const { return given_; }

 private:
  const ParamInfo& info(const std::string& name, ParamType t) const;
  std::string raw(const ParamInfo& p) const;
  void check_range(const ParamInfo& p, double v) const;
  Verb verb_;
  Params given_;
};

}  // namespace slimlm::pipeline
