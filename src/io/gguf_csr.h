// GGUF storage of a weight's CSR side matrix (core/csr.h) next to the weight tensor `weight`:
// `<weight>.outl_rowptr` (i32, [rows + 1]), `<weight>.outl_col` (i32, [nnz]) and
// `<weight>.outl_val` (f16, [nnz]); with nnz = 0 only the row pointer is written (GGUF has no
// empty tensors).
#pragma once
#include "core/csr.h"
#include "io/gguf.h"
#include <cstdint>
#include <optional>
#include <string>

namespace slimlm::gguf {

// The writer keeps pointers into s: s must outlive w.write().
void add_csr_tensors(Writer& w, const std::string& weight, const CsrF16& s);
// The side matrix of `weight` (rows x cols, the weight's shape), or nullopt when the file has
// none. Throws Error for tensors of the wrong type or size and for an inconsistent CSR.
std::optional<CsrF16> read_csr_tensors(const File& f, const std::string& weight, int64_t rows, int64_t cols);

}  // namespace slimlm::gguf
