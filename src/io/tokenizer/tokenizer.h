// Tokenizers built from GGUF metadata (tokenizer.ggml.*) or a Hugging Face tokenizer.json:
// GPT-2 byte-level BPE with the model's pre-tokenizer regex (SmolLM2, Qwen, Llama-3 style)
// and SentencePiece BPE with byte fallback (Llama-2, Gemma). Encode, decode, chat.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slimlm::gguf { class File; }

namespace slimlm {

struct ChatMessage { std::string role, content; };

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& f);   // throws Error
  static std::unique_ptr<Tokenizer> from_hf_json(const std::string& tokenizer_json_path,
                                                 const std::string& tokenizer_config_path = "");

  // add_special: prepend BOS (and append EOS) when the model's metadata says so.
  // parse_special: recognise control tokens such as <|im_start|> written in the text.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special, bool parse_special) const = 0;
  virtual std::string token_to_piece(int32_t id) const = 0;   // bytes the token stands for
  // Concatenated pieces; control and unknown tokens (<bos>, <|im_end|>, ...) produce no text.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t n_vocab() const { return int32_t(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool is_eog(int32_t id) const;   // end of generation: eos, eot, <|im_end|>, <end_of_turn>
  const std::string& token_text(int32_t id) const { return tokens_.at(size_t(id)); }
  // Renders messages for generation: ChatML, Gemma or Llama-2 style chosen from the
  // model's chat template (tokenizer.chat_template); ends with the assistant's turn opener.
  std::string apply_chat_template(const std::vector<ChatMessage>& msgs) const;
  // Whether the model names a chat template (apply_chat_template falls back to one otherwise).
  bool has_chat_template() const { return !chat_template_.empty(); }

 protected:
  std::vector<std::string> tokens_;
  std::vector<int32_t> types_;     // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<int32_t> eog_ids_;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  bool add_space_prefix_ = false;  // SentencePiece: encode adds a leading space, decode drops it
  std::string chat_template_;
};

}  // namespace slimlm
