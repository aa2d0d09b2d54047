// Pruning masks from score matrices (larger score = more important): which weights to keep in
// a comparison group (an output row, a whole layer, or every M consecutive inputs for N:M),
// with exact counts and ties broken by position, and applying a mask to weights.
#pragma once
#include <cstdint>
#include <vector>

namespace slimlm::prune {

// keep[i] = 1 for a kept weight, 0 for a pruned one; row-major like the weights (rows x cols).
using Mask = std::vector<uint8_t>;

// Number of weights pruned out of n at sparsity s: floor(s·n) (a 1e-9 guard absorbs s·n landing
// just below an integer in floating point).
int64_t prune_count(double sparsity, int64_t n);
// Clears keep[i] for the `count` lowest scores of score[0..n): ascending score, and among equal
// scores the lower index first, so the result does not depend on the sort.
void prune_lowest(const float* score, int64_t n, int64_t count, uint8_t* keep);

// Per output row: prune_count(s, cols) weights pruned in every row (Wanda's comparison group).
Mask mask_per_row(const float* score, int64_t rows, int64_t cols, double sparsity);
// Per layer: prune_count(s, rows·cols) lowest scores of the whole matrix.
Mask mask_per_layer(const float* score, int64_t rows, int64_t cols, double sparsity);
// N:M: in every row, the N largest of each M consecutive inputs are kept; a ragged last group of
// r < M inputs keeps min(N, r), so no group of M has more than N non-zeros.
Mask mask_nm(const float* score, int64_t rows, int64_t cols, int n, int m);
// Threshold mask (global magnitude): prunes score < t, plus the first `ties` entries equal to t.
Mask mask_threshold(const float* score, int64_t n, float t, int64_t ties);

// w[i] = 0 where keep[i] == 0.
void apply_mask(float* w, const Mask& keep);
// Number of exact zeros in w[0..n).
int64_t count_zeros(const float* w, int64_t n);
// True when no group of m consecutive inputs of any row holds more than n non-zeros.
bool satisfies_nm(const float* w, int64_t rows, int64_t cols, int n, int m);

}  // namespace slimlm::prune
