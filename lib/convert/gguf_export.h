// `moestream convert MODEL.mst OUT.gguf`: a packed model written as a GGUF file that
// llama.cpp loads, so that the two engines can be run on the same weights, byte for byte.
// Nothing is requantized: each tensor keeps its stored type, which GGUF has under another
// name (moestream's Q4 block is ggml's Q4_1, Q8 is Q8_0, the K-quant experts of `convert
// --experts q2k..q6k` are Q2_K..Q6_K, whose rows must then be whole 256-element super-blocks
// since a packed file pads the others and GGUF cannot; BF16, F16 and F32 are themselves);
// only the 1-D tensors (norms) become F32, as llama.cpp keeps them. A layer's experts are
// stacked into blk.N.ffn_{gate,up,down}_exps [E][rows][cols] as llama.cpp expects, and the
// metadata is written as convert_hf_to_gguf.py does (convert/gguf_model_metadata.h) from
// the config.json and tokenizer the packed file carries. The GGUF then loads in moestream
// too (with the experts streamed out of it).
//
// Architectures: qwen3_moe with every layer MoE (llama.cpp's qwen3moe has no dense layers),
// and deepseek_v3 as llama.cpp's deepseek2 (its first_k_dense_replace leading layers dense,
// MLA's kv_b_proj kept whole as attn_kv_b as older conversions write it, the sigmoid router's
// correction bias as exp_probs_b), and qwen3_5_moe_text as llama.cpp's qwen35moe (Gated
// DeltaNet under ssm_* / attn_qkv / attn_gate, changed as its converter changes them:
// convert/gguf_export_edits.h). The vocabulary is written with the "qwen2" pre-tokenizer
// name, as for the test models' tokenizer; another tokenizer's name is not derived.
#pragma once

#include <cstdint>
#include <string>

namespace mst {

struct GgufExportReport {
    uint64_t file_bytes = 0;
    uint64_t resident_tensors = 0;  // written one for one
    uint64_t expert_tensors = 0;    // stacked tensors (three per MoE layer)
    uint64_t expert_bytes = 0;
    double seconds = 0.0;
};

// Writes `source` (a packed .mst file) to `destination` under a temporary name, renamed
// into place when complete. Throws mst::Error: MST_ERR_INVALID_ARGUMENT when `source` is
// not a packed file, MST_ERR_UNSUPPORTED naming what GGUF or llama.cpp cannot take (an
// architecture, a dense layer, a dtype, zstd-compressed experts), MST_ERR_BAD_FORMAT for
// missing metadata, MST_ERR_IO when `destination` exists without `force`, the disk lacks
// the space (naming both sizes) or a read or write fails.
GgufExportReport export_gguf(const std::string &source, const std::string &destination, bool force);

}  // namespace mst
