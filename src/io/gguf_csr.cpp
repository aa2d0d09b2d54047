#include "io/gguf_csr.h"
#include "core/error.h"
#include <algorithm>

namespace slimlm::gguf {

void add_csr_tensors(Writer& w, const std::string& weight, const CsrF16& s) {
  s.validate();
  w.add_tensor(weight + ".outl_rowptr", DType::I32, {s.rows + 1}, s.row_ptr.data(), s.row_ptr.size() * 4);
  if (s.nnz() == 0) return;
  w.add_tensor(weight + ".outl_col", DType::I32, {s.nnz()}, s.col.data(), s.col.size() * 4);
  w.add_tensor(weight + ".outl_val", DType::F16, {s.nnz()}, s.val.data(), s.val.size() * 2);
}

namespace {
template <class T>
std::vector<T> read_vector(const File& f, const std::string& name, DType type) {
  const TensorInfo* t = f.tensor(name);
  if (!t) fail(f.path(), ": tensor '", name, "' is missing");
  if (t->type != type || t->ne.size() != 1)
    fail(f.path(), ": tensor '", name, "' should be a 1-D ", type_name(type), " tensor, not ", type_name(t->type));
  std::vector<T> v(size_t(t->ne[0]));
  std::copy_n(t->data, v.size() * sizeof(T), reinterpret_cast<uint8_t*>(v.data()));
  return v;
}
}  // namespace

std::optional<CsrF16> read_csr_tensors(const File& f, const std::string& weight, int64_t rows, int64_t cols) {
  if (!f.tensor(weight + ".outl_rowptr")) return std::nullopt;
  CsrF16 s;
  s.rows = rows; s.cols = cols;
  s.row_ptr = read_vector<int32_t>(f, weight + ".outl_rowptr", DType::I32);
  if (int64_t(s.row_ptr.size()) != rows + 1)
    fail(f.path(), ": tensor '", weight, ".outl_rowptr' has ", s.row_ptr.size(), " entries, the weight has ", rows, " rows");
  if (s.row_ptr.back() != 0) {
    s.col = read_vector<int32_t>(f, weight + ".outl_col", DType::I32);
    s.val = read_vector<uint16_t>(f, weight + ".outl_val", DType::F16);
  }
  try {
    s.validate();
  } catch (const Error& e) {
    fail(f.path(), ": outliers of '", weight, "': ", e.what());
  }
  return s;
}

}  // namespace slimlm::gguf
