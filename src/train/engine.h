// The training engine's model: a full-precision master copy of a model's weights (any storage
// type is dequantized once), a forward pass that keeps what the backward needs, and the
// backward through every block. The layers are walked with the same per-layer plan the
// inference forward pass reads (model/plan.h): head counts, sliding window, RoPE base and
// attention scale come from there. Families: llama (SmolLM2, Llama, llama2.c) and gemma3
// (QK-norm, post-norms, GeGLU, scaled embeddings, local/global layers).
#pragma once
#include "model/model.h"
#include "model/plan.h"
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace slimlm::train {

// Master weights in T (float for training, double for gradient checks); the same shapes serve
// as gradients. Empty vectors: the tensor is absent (e.g. no QK-norm, or a tied output).
template <class T> struct Weights {
  // A low-rank adapter of one linear (LoRA): W x + scale · B (A x), A rank x k, B rows x rank.
  struct Adapter { std::vector<T> A, B; };
  struct Layer {
    std::vector<T> attn_norm, wq, wk, wv, wo, q_norm, k_norm, attn_post_norm;
    std::vector<T> ffn_norm, w_gate, w_up, w_down, ffn_post_norm;
    std::array<Adapter, 7> lora;  // per linear, in the order of linear(i); empty: none
    // The seven linears: q, k, v, o, gate, up, down.
    std::vector<T>& linear(int i);
    const std::vector<T>& linear(int i) const { return const_cast<Layer*>(this)->linear(i); }
  };
  std::vector<T> tok_embd, out_norm, output;  // output empty: tied to tok_embd
  std::vector<Layer> layers;
  // Trainable tensors outside the model (the feature-distillation projections of
  // train/state_kd.h, named "kd.*"): trained, clipped and checkpointed with the weights, never
  // exported; they train with a frozen base too.
  std::vector<std::pair<std::string, std::vector<T>>> aux;
  double lora_scale = 0;      // α / rank
  bool frozen_base = false;   // only the adapters train (their gradients alone are kept)

  static Weights from_model(const Model& m);
  Weights zeros_like() const;
  // Calls f(name, tensor) for every present tensor, in a fixed order (GGUF-style names;
  // adapters as <linear>.lora_a / .lora_b; the aux tensors last).
  void each(const std::function<void(const std::string&, std::vector<T>&)>& f);
  // The same over the tensors that train: the adapters (and aux) alone when the base is frozen.
  void each_trainable(const std::function<void(const std::string&, std::vector<T>&)>& f);
  size_t n_params();
};

// LoRA adapters (Hu et al. 2021) on a frozen base: rank r, scale α / r, on the named linears
// (q, k, v, o, gate, up, down). A starts normal(0, 1/sqrt(k)) from the seed, B at zero, so the
// adapted model starts equal to the base.
struct LoraOptions {
  int64_t rank = 8;
  double alpha = 16;
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
  uint64_t seed = 1;
};
template <class T> void add_lora(Weights<T>& w, const LoraOptions& o);
// Folds every adapter into its base weight (W += scale · B · A) and removes the adapters.
template <class T> void merge_lora(Weights<T>& w);

// Writes master weights back into the model's tensors as f32 (names and shapes kept; a tied
// output stays tied), so the model runs, evaluates and saves as usual.
void store_weights(Weights<float>& w, Model& m);

// Next-token loss over one sequence: tokens ids[0..n) at positions 0..n-1, targets[t] the token
// that should follow ids[t] (< 0: not scored). Returns the mean cross-entropy; when grad is not
// null, adds dLoss/dW to it.
template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, const int32_t* targets, int64_t n, Weights<T>* grad);

// Any loss of the logits (n x V): returns it and, when dlogits is not null, adds its gradient.
template <class T> using LogitLoss = std::function<double(const T* logits, int64_t n, int64_t V, T* dlogits)>;
// The same with a loss of the logits (distillation, or a mix of losses).
template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, int64_t n, const LogitLoss<T>& loss, Weights<T>* grad);

// The states of a forward pass that state distillation reads (train/state_kd.h), per layer: h the
// block's output (the residual stream after the block, n x E), and q, k, v the attention's
// inputs: q and k after QK-norm and RoPE, exactly as the attention reads them (n x q_width,
// n x kv_width), v as projected. Only the layers and kinds asked for are kept; the rest are empty.
enum StateKind : uint8_t { kHiddenState = 1, kQkvState = 2 };
template <class T> struct States {
  struct Layer { std::vector<T> h, q, k, v; };
  std::vector<Layer> layers;
  int64_t n = 0;          // tokens
  std::vector<T> logits;  // n x vocab (forward_states only)
};
// A loss of the states: want[l] (StateKind bits, one entry per layer; missing: none) says what it
// reads of layer l; fn returns the loss and, when ds is not null, adds its gradient to ds, whose
// tensors are zero and shaped like the states read. The backward adds ds.h to the gradient of
// block l's output and ds.q/k/v to those of the attention's inputs.
template <class T> struct StateLoss {
  std::vector<uint8_t> want;
  std::function<double(const States<T>& s, States<T>* ds)> fn;
};
// The forward pass's logits and the states asked for (a teacher's, for distillation).
template <class T> States<T> forward_states(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                            const int32_t* ids, int64_t n, const std::vector<uint8_t>& want);
// Logit loss + state loss (an empty fn: none); gradients of both into grad when not null.
template <class T> double loss_and_grad(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                        const int32_t* ids, int64_t n, const LogitLoss<T>& loss,
                                        const StateLoss<T>& states, Weights<T>* grad);

// Logits (n x vocab) of the engine's forward pass, for checks against the inference runtime.
template <class T> std::vector<T> logits(const Model& m, const std::vector<LayerPlan>& plan, const Weights<T>& w,
                                         const int32_t* ids, int64_t n);

// One block alone, for block-wise reconstruction (quant/qat.h): the input rows x (n x E) of the
// layer that plan entry p describes, and its output rows.
template <class T> std::vector<T> block_output(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                               const std::vector<T>& x, int64_t n);
// The mean squared error of the block's output against target (n x E), averaged over every
// value; when grad is not null, adds its gradient to grad's non-empty tensors (an empty tensor
// does not train, so grad may hold the linears alone).
template <class T> double block_mse(const Model& m, const LayerPlan& p, const typename Weights<T>::Layer& L,
                                    const std::vector<T>& x, const std::vector<T>& target, int64_t n,
                                    typename Weights<T>::Layer* grad);
// The first block's input: the token embeddings (times sqrt(n_embd) where the family scales them).
template <class T> std::vector<T> embed(const Model& m, const Weights<T>& w, const int32_t* ids, int64_t n);

}  // namespace slimlm::train
