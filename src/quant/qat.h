// Quantization-aware training (survey §3.4) on the training engine (train/engine.h):
//  - fake quantization of a weight matrix on a uniform grid, ŵ = s·(q − z) with
//    q = clamp(round(w/s + z), lo, hi), the straight-through estimator for the rounding and
//    learned step sizes (LSQ, Esser et al. 2020) and zero points;
//  - block-wise reconstruction (EfficientQAT's Block-AP, Chen et al. 2024): block by block, the
//    block's weights and step sizes are trained so that the quantized block, fed the outputs of
//    the quantized blocks before it, reproduces the original block's outputs on calibration text;
//  - then end-to-end training of the step sizes alone (E2E-QP) with the codes frozen, by
//    distillation (forward KL) from the original model;
//  - export to the codec's packed format (slimlm's uNgG / sNgG, or ggml's q4_0 … q8_0 blocks,
//    which stock llama.cpp runs).
#pragma once
#include "model/model.h"
#include "quant/codec.h"
#include "quant/methods.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::quant {

// The fake quantizer of one matrix (rows x cols, groups of `group` along a row, the last one
// may be shorter): one step size s and zero point z per group, rows x ceil(cols / group).
struct FakeQuant {
  int64_t rows = 0, cols = 0, group = 0;
  int lo = 0, hi = 0;         // the code range
  bool learn_zero = false;    // asymmetric grids learn z; symmetric ones keep it at the codec's constant
  bool int_zero = false;      // the stored zero point is an integer (slimlm's uNgG): z rounds in the forward pass
  bool affine = false;        // the codec stores the minimum m = −s·z instead (q4_1, q5_1)
  std::vector<float> s, z;

  // Starts from the codec's own round-to-nearest fit of w; Error for grids that are not uniform
  // (K-quants, NF, codebooks, w8a8).
  static FakeQuant fit(const Codec& c, const float* w, int64_t rows, int64_t cols);
  int64_t groups_per_row() const { return (cols + group - 1) / group; }
  void forward(const float* w, float* wq) const;
  // Straight-through / LSQ gradients from dL/dŵ: dw (written) passes where w lies inside the
  // grid's range and is zero where it clamps; ds and dz (added, per group) follow
  // dŵ/ds = q − z − w/s inside and q − z when clamped, dŵ/dz = 0 inside and −s when clamped.
  void backward(const float* w, const float* dwq, float* dw, float* ds, float* dz) const;
  std::vector<uint8_t> codes(const float* w) const;  // q of every weight (frozen for the end-to-end phase)
  void dequant(const uint8_t* q, float* wq) const;   // ŵ from frozen codes and the current s, z
  void dequant_backward(const uint8_t* q, const float* dwq, float* ds) const;  // adds dL/ds
  // The frozen codes with s, z as the codec stores them (f16 scales, integer zero points or f16 minimums).
  QMatrix to_qmatrix(const uint8_t* q, const Codec& c) const;
};

struct QatOptions {
  std::string type = "u3g128";   // a uniform codec name (make_codec)
  int64_t epochs = 2;            // Block-AP passes over the calibration sequences, per block
  double lr_weights = 5e-4;      // Block-AP learning rates (Adam): weights
  double lr_scales = 2e-3;       //   and step sizes / zero points
  int64_t e2e_steps = 0;         // end-to-end steps (one calibration sequence each; 0: none)
  double e2e_lr = 2e-5;          // their learning rate for the step sizes
  uint64_t seed = 1;             // order of the sequences
  bool progress = true;
  void validate() const;
};

struct QatReport {
  std::vector<double> mse_rtn, mse_qat;   // per block: output MSE of round-to-nearest and after Block-AP
  std::vector<double> e2e_loss;           // per end-to-end step: the KL divergence to the original
  double seconds_block = 0, seconds_e2e = 0;
};

// Quantizes every block linear of m with QAT on the calibration sequences (all of one length);
// the model's linears become the codec's packed tensors, everything else is left as it is.
QatReport qat(Model& m, const std::vector<std::vector<int32_t>>& calib, const QatOptions& o);

}  // namespace slimlm::quant
