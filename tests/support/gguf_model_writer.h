// Test tool: writes a Hugging Face Qwen3-MoE checkpoint directory (config.json,
// tokenizer.json, tokenizer_config.json, safetensors) as a GGUF file the way llama.cpp's
// convert_hf_to_gguf.py lays one out for the `qwen3moe` architecture: its tensor names,
// the experts of a layer stacked into blk.N.ffn_{gate,up,down}_exps [E][rows][cols], its
// metadata keys, and a "gpt2" byte-level BPE vocabulary under tokenizer.ggml.*. Norms and
// the router stay F32, as llama.cpp keeps them; the other matrices take `type`, except
// where llama.cpp's quantizer puts another: MXFP4 is for experts only (the other matrices
// Q8_0, as its MXFP4_MOE file type does), IQ4_XS falls back to IQ4_NL for rows that
// are not whole 256-element blocks, and a block type to F16 for rows that are not whole
// blocks of 32; a K-quant (Q2_K .. Q6_K) falls back as llama.cpp's tensor_type_fallback
// does for rows that are not whole 256-element super-blocks (Q2_K, Q3_K to IQ4_NL, Q4_K to
// Q5_0, Q5_K to Q5_1, Q6_K to Q8_0). The block types are quantized by moestream's
// round-to-nearest quantizers (core/ggml_legacy_quants.h), Q4_1 by its Q4 one, the
// K-quants by its K-quant quantizer (core/ggml_kquants.h, what `convert --experts q4k` uses).
//
// Written from the GGUF specification and gguf-py's name tables, independently of
// moestream's GGUF reader, so that a model loaded through the reader can be checked
// against the checkpoint's reference logits.
#pragma once

#include <string>

namespace mst::test {

enum class GgufWeightType { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };
// ggml's name of the type ("Q4_1"), a static string.
const char *gguf_weight_type_name(GgufWeightType type);

// Throws std::runtime_error (or mst::Error from reading the checkpoint) on failure.
void write_qwen3moe_gguf(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// The same file as write_qwen3moe_gguf(type), but every tensor stored as F32 holding the
// values that type's blocks decode to (quantized, then dequantized): the same model with
// the same rounding, computed in float, to check the block kernels against at the scale
// of a whole model.
void write_qwen3moe_gguf_decoded(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// A Mixtral checkpoint as llama.cpp stores one: architecture `llama` with experts, the
// rows of attn_q / attn_k permuted within each head as convert_hf_to_gguf.py's
// LlamaModel.permute does (for ggml's interleaved RoPE).
void write_mixtral_gguf(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// As write_qwen3moe_gguf_decoded: the same file, every tensor F32 holding the decoded values.
void write_mixtral_gguf_decoded(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// write_mixtral_gguf with a SentencePiece vocabulary (tokenizer.ggml.model "llama": pieces,
// scores and token types, no merges), as real Mixtral GGUFs carry one, in place of the
// checkpoint's byte-level tokenizer: <unk> <s> </s>, the 256 byte pieces, "▁", the letters,
// "th", "the" and "▁the", then unused pieces up to vocab_size.
void write_mixtral_gguf_sentencepiece(const std::string &checkpoint_dir, const std::string &gguf_path,
                                      GgufWeightType type);
// DeepSeek-V3 or Kimi K2 as llama.cpp's `deepseek2`: MLA tensors, the shared expert,
// exp_probs_b, the leading dense layers, YaRN keys; kv_b_proj split into attn_k_b /
// attn_v_b as newer conversions write it, or kept as attn_kv_b as older ones did.
// A block type falls back to F16 for rows that are not whole blocks of 32, as llama.cpp does.
void write_deepseek2_gguf(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type,
                          bool split_kv_b);
// As write_qwen3moe_gguf_decoded: the same file, every tensor F32 holding the decoded values.
void write_deepseek2_gguf_decoded(const std::string &checkpoint_dir, const std::string &gguf_path,
                                  GgufWeightType type, bool split_kv_b);
// gpt-oss from transformers' float save: the fused, interleaved gate_up_proj split into
// ffn_gate_exps / ffn_up_exps [E][I][H] with their biases, down_proj transposed, attention
// sinks, the router's bias, the sliding window and YaRN keys.
void write_gpt_oss_gguf(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// Qwen3.5-MoE (`qwen35moe`) or Qwen3-Next (`qwen3next`), by the checkpoint's model_type:
// Gated DeltaNet tensors under ssm_* with the converter's changes (-exp(A_log), 1 + w
// norms, conv1d squeezed, Qwen3-Next's in_proj_qkvz cut into attn_qkv / attn_gate,
// Qwen3.5's value heads tiled), the shared expert and its gate, the ssm.* keys.
void write_qwen_hybrid_gguf(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);
// As write_qwen3moe_gguf_decoded: the same file, every tensor F32 holding the decoded values.
void write_qwen_hybrid_gguf_decoded(const std::string &checkpoint_dir, const std::string &gguf_path,
                                    GgufWeightType type);

// Q8_0 as ggml's reference quantizer defines it: per block of 32, d = max|x| / 127,
// q = round(x / d), stored as the f16 d then 32 int8. n must be a multiple of 32.
std::string quantize_q8_0(const float *x, size_t n);

}  // namespace mst::test
