// ForwardOptions::route_trace reports what every architecture's routers chose: over the
// golden prompt, once per sparse layer, the same experts per token as the reference's
// routers (router_topk_ids in golden.safetensors, made by transformers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "format/safetensors.h"
#include "golden.h"
#include "model/loaded_model.h"
#include "test_paths.h"

namespace mst {
namespace {

// An int32 tensor of golden.safetensors with its shape.
std::vector<int32_t> read_i32(const std::string &path, const std::string &name, std::vector<int64_t> &shape) {
    const File file = File::open_read(path);
    for (const TensorInfo &t : read_safetensors_header(file).tensors) {
        if (t.name != name) continue;
        EXPECT_EQ(t.dtype, DType::I32) << name;
        std::vector<int32_t> v(t.nbytes / 4);
        file.pread_exact(v.data(), t.nbytes, t.offset);
        shape = t.shape;
        return v;
    }
    ADD_FAILURE() << path << " has no " << name;
    return {};
}

class RouteTrace : public ::testing::TestWithParam<std::string> {};

TEST_P(RouteTrace, ReportsTheReferenceRoutersChoices) {
    const std::string dir = test::data_path(GetParam());
    const std::string golden_path = dir + "/golden.safetensors";
    const test::Golden golden = test::load_golden(golden_path);
    std::vector<int64_t> layers_shape, ids_shape;
    const std::vector<int32_t> layers = read_i32(golden_path, "router_layers", layers_shape);
    const std::vector<int32_t> want = read_i32(golden_path, "router_topk_ids", ids_shape);
    ASSERT_EQ(ids_shape.size(), 3u);
    const int64_t T = ids_shape[1], k = ids_shape[2];
    ASSERT_EQ(T, int64_t(golden.input_ids.size()));

    LoadOptions options;
    options.backend = "cpu";
    const auto model = load_model(dir, options);
    std::map<size_t, std::vector<int32_t>> seen;  // layer -> ids [T][k]
    int calls = 0;
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    fo.route_trace.chosen = [&](size_t layer, int64_t n_tokens, int32_t top_k, const int32_t *ids, const float *) {
        ++calls;
        EXPECT_EQ(n_tokens, T);
        EXPECT_EQ(top_k, k);
        seen[layer].assign(ids, ids + n_tokens * top_k);
    };
    const auto state = model->model->create_state(int32_t(T));
    std::vector<float> logits(size_t(golden.vocab));
    ExpertIoStats io;
    model->model->forward(*state, 0, golden.input_ids, fo, logits.data(), io);

    EXPECT_EQ(calls, int(layers.size())) << "one call per sparse layer";
    for (size_t m = 0; m < layers.size(); ++m) {
        ASSERT_TRUE(seen.contains(size_t(layers[m]))) << "layer " << layers[m] << " not traced";
        const std::vector<int32_t> &got = seen[size_t(layers[m])];
        for (int64_t t = 0; t < T; ++t) {
            std::vector<int32_t> a(got.begin() + t * k, got.begin() + (t + 1) * k);
            std::vector<int32_t> b(want.begin() + (int64_t(m) * T + t) * k, want.begin() + (int64_t(m) * T + t + 1) * k);
            std::ranges::sort(a);
            std::ranges::sort(b);
            EXPECT_EQ(a, b) << GetParam() << " layer " << layers[m] << " token " << t;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Architectures, RouteTrace,
                         ::testing::Values("qwen3_moe_tiny", "qwen3_moe_trained", "qwen3_5_moe_tiny",
                                           "qwen3_next_tiny", "deepseek_v3_tiny", "mixtral_tiny", "gpt_oss_tiny",
                                           "deepseek_v3_trained", "qwen3_5_moe_trained"));

}  // namespace
}  // namespace mst
