// Distillation beyond the logits (survey §5): losses on a student's states against a teacher's,
// read from the engine's forward passes (train/engine.h States) and added to a logit loss.
//   feature   MSE between the student's hidden state (the residual stream after a block, n x E_s)
//             and the teacher's (n x E_t), through a learned projection P (E_t x E_s, starting at
//             the truncated identity) when the widths differ (or when asked): mean((h_s Pᵀ − h_t)²)
//   relation  MiniLM v2's self-attention relations (Wang et al. 2020): q, k and v (q and k after
//             QK-norm and RoPE, as the attention reads them) split into R relation heads of
//             width/R columns; per head softmax(x·xᵀ/√(width/R)) over the causal rows (position t
//             over positions ≤ t), and KL(teacher ‖ student) per row. The relation loss is the
//             sum of the Q-Q, K-K and V-V terms, each the mean over heads and rows.
// Layers pair up uniformly (student layer i ↔ teacher layer round((i+1)·L_t/L_s) − 1) or as
// listed. Each part is the mean over its layer pairs; the state loss is α·feature + β·relation.
#pragma once
#include "model/model.h"
#include "model/plan.h"
#include "train/engine.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::train {

struct LayerPair { int64_t student = 0, teacher = -1; };  // teacher < 0: the uniform map

// Student layer i of Ls ↔ teacher layer round((i+1)·Lt/Ls) − 1.
int64_t uniform_teacher_layer(int64_t i, int64_t Ls, int64_t Lt);
// "0,2" (teacher layers by the uniform map) or "0:1,2:4" (student:teacher), or a mix; "" → none.
std::vector<LayerPair> parse_layer_pairs(const std::string& spec);

struct StateKdOptions {
  double feature_weight = 0;               // α ≥ 0
  double relation_weight = 0;              // β ≥ 0
  std::vector<LayerPair> feature_layers;   // empty: every student layer, uniformly mapped
  std::vector<LayerPair> relation_layers;  // empty: the student's last layer ↔ the teacher's last
  int64_t relation_heads = 0;              // R; 0: the gcd of the paired layers' KV head counts
  bool projection = false;                 // a projection even where the widths are equal
  bool active() const { return feature_weight > 0 || relation_weight > 0; }
  void validate() const;
};

// The options resolved against a student and a teacher: pairs range-checked and mapped, R
// checked to divide every q and kv width, the states each model must expose.
struct StateKdPlan {
  double alpha = 0, beta = 0;
  std::vector<LayerPair> feature, relation;
  int64_t relation_heads = 0, student_width = 0, teacher_width = 0;
  bool projection = false;
  std::vector<uint8_t> want_student, want_teacher;  // StateKind bits per layer
};
StateKdPlan plan_state_kd(const StateKdOptions& o, const Model& student, const std::vector<LayerPlan>& ps,
                          const Model& teacher, const std::vector<LayerPlan>& pt);

// The projection of feature pair k: the aux tensor "kd.feature_proj.<student layer>".
std::string projection_name(const LayerPair& p);
// Adds the plan's projections (E_t x E_s, the truncated identity) to w.aux.
template <class T> void add_projections(const StateKdPlan& p, Weights<T>& w);

struct StateKdParts { double feature = 0, relation = 0; };  // unweighted
// The state loss α·feature + β·relation of the student's states against the teacher's (which
// must hold plan.want_teacher): the projections are read from w.aux, and their gradients added
// to grad->aux when grad is not null. parts (may be null) gets the two parts of the last call.
// The loss keeps references to plan, teacher, w and parts.
template <class T> StateLoss<T> state_kd_loss(const StateKdPlan& plan, const States<T>& teacher, const Weights<T>& w,
                                              Weights<T>* grad, StateKdParts* parts);

// The parts alone. feature_mse: mean((hs Pᵀ − ht)²) over n x Et (P null: Es == Et, the
// identity); adds scale × its gradient to dhs and dP (either may be null).
template <class T> double feature_mse(const T* hs, int64_t Es, const T* ht, int64_t Et, int64_t n, const T* P,
                                      double scale, T* dhs, T* dP);
// relation_kl: the mean over R heads and n causal rows of KL(teacher ‖ student) between the
// relations of xt (n x wt) and xs (n x ws); adds scale × its gradient to dxs (may be null).
template <class T> double relation_kl(const T* xs, int64_t ws, const T* xt, int64_t wt, int64_t n, int64_t R,
                                      double scale, T* dxs);

}  // namespace slimlm::train
