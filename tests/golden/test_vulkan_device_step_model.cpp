// MoeDecoder's device-resident step on Vulkan (docs/device_graph.md): a decode step of
// Qwen3-MoE and Mixtral makes one submission per sparse layer (the wait for its router's
// expert ids) and one for the head, not four or more per layer, and its logits equal the CPU
// backend's within the golden tolerance with the same greedy id. Skipped without a Vulkan
// device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "golden.h"
#include "golden_backends.h"
#include "model/loaded_model.h"
#include "test_paths.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {
namespace {

class VulkanDeviceStepModel : public ::testing::TestWithParam<std::string> {};

struct StepResult {
    std::vector<float> prompt_logits, decode_logits;
    uint64_t decode_submissions = 0;
    uint64_t decode_by_id_layers = 0;  // layers whose experts the device chose (DeviceExperts)
    int64_t resident_layers = 0;       // layers with every expert on the device after the prompt
};

StepResult run_steps(const std::string &dir, const std::string &backend, const std::vector<int32_t> &prompt) {
    LoadOptions options;
    options.backend = backend;
    const auto model = load_model(dir, options);
    ForwardOptions fo;
    fo.experts_per_token = model->experts_per_token;
    const auto state = model->model->create_state(int32_t(prompt.size()) + 2);
    StepResult r;
    r.prompt_logits.resize(size_t(model->config.vocab_size));
    r.decode_logits.resize(size_t(model->config.vocab_size));
    ExpertIoStats io;
    model->model->forward(*state, 0, prompt, fo, r.prompt_logits.data(), io);
    const int32_t next = int32_t(std::max_element(r.prompt_logits.begin(), r.prompt_logits.end()) - r.prompt_logits.begin());
    uint64_t before = 0, by_id_before = 0;
#ifdef MST_HAVE_VULKAN
    auto *vk = dynamic_cast<VulkanBackend *>(model->backend.get());
    if (vk) {
        before = vk->submissions();
        by_id_before = vk->experts_by_id_calls();
        for (int64_t l = 0; l < model->config.n_layers; ++l)
            r.resident_layers += vk->experts_resident(l, int32_t(model->config.n_experts)) ? 1 : 0;
    }
#endif
    const std::vector<int32_t> one{next};
    model->model->forward(*state, int32_t(prompt.size()), one, fo, r.decode_logits.data(), io);
#ifdef MST_HAVE_VULKAN
    if (vk) {
        r.decode_submissions = vk->submissions() - before;
        r.decode_by_id_layers = vk->experts_by_id_calls() - by_id_before;
    }
#endif
    return r;
}

// max |got - want| / max |want|, as the golden suites bound logits.
double relative_error(const std::vector<float> &got, const std::vector<float> &want) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        err = std::max(err, std::abs(double(got[i]) - double(want[i])));
        ref = std::max(ref, std::abs(double(want[i])));
    }
    return ref > 0 ? err / ref : err;
}

size_t argmax(const std::vector<float> &v) { return size_t(std::max_element(v.begin(), v.end()) - v.begin()); }

TEST_P(VulkanDeviceStepModel, DecodeWaitsOncePerSparseLayer) {
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path(GetParam());
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    const StepResult cpu = run_steps(dir, "cpu", golden.input_ids);
    const StepResult gpu = run_steps(dir, "vulkan", golden.input_ids);
    const auto model = load_model(dir, LoadOptions{.backend = "cpu"});
    const int64_t layers = model->config.n_layers;
    // Every layer of these fixtures is sparse: a wait for each router, one for the head.
    EXPECT_LE(gpu.decode_submissions, uint64_t(layers + 1)) << layers << " layers";
    EXPECT_GE(gpu.decode_submissions, 1u);
    const double tol = golden_suite::backend_tolerance("vulkan", 2e-3);
    EXPECT_LT(relative_error(gpu.prompt_logits, cpu.prompt_logits), tol);
    EXPECT_LT(relative_error(gpu.decode_logits, cpu.decode_logits), tol);
    EXPECT_EQ(argmax(gpu.prompt_logits), argmax(cpu.prompt_logits));
    EXPECT_EQ(argmax(gpu.decode_logits), argmax(cpu.decode_logits));
}

TEST_P(VulkanDeviceStepModel, ResidentDecodeIsOneWait) {
    // The prompt uses every expert of these fixtures' layers, so the GPU holds them all
    // (stacked with their slot tables) and the decode step chooses its experts on the
    // device: one wait for the step, the logits' (docs/device_graph.md, "One submission per
    // resident decode step"). MST_VULKAN_EXPERTS_BY_ID=0 would give a wait per layer.
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path(GetParam());
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    const StepResult cpu = run_steps(dir, "cpu", golden.input_ids);
    const StepResult gpu = run_steps(dir, "vulkan", golden.input_ids);
    const auto model = load_model(dir, LoadOptions{.backend = "cpu"});
    const ModelConfig &c = model->config;
    const int64_t sparse = c.n_layers - int64_t(c.mlp_only_layers.size());  // these fixtures: decoder_sparse_step 1
    ASSERT_EQ(gpu.resident_layers, sparse) << "the prompt did not put every expert on the device";
    EXPECT_EQ(gpu.decode_by_id_layers, uint64_t(sparse));
    EXPECT_EQ(gpu.decode_submissions, 1u);
    const double tol = golden_suite::backend_tolerance("vulkan", 2e-3);
    EXPECT_LT(relative_error(gpu.decode_logits, cpu.decode_logits), tol);
    EXPECT_EQ(argmax(gpu.decode_logits), argmax(cpu.decode_logits));
}

#ifdef MST_HAVE_VULKAN
TEST_P(VulkanDeviceStepModel, ResidentPrefillIsGroupedOnTheDevice) {
    // Once every expert is on the device, a prompt's sparse layers group their tokens by
    // expert on the device from the device's top-k (docs/gpu_prefill.md, "Grouping a
    // prefill's experts on the device"): logits bit for bit those of the host grouping
    // (MST_VULKAN_DEVICE_GROUPING=0) and within the golden tolerance of the CPU.
    if (const std::string why = golden_suite::backend_unavailable("vulkan"); !why.empty()) GTEST_SKIP() << why;
    const std::string dir = test::data_path(GetParam());
    const test::Golden golden = test::load_golden(dir + "/golden.safetensors");
    std::vector<int32_t> prompt;  // at least the 16 tokens a grouped batch takes, 70: no whole tile
    while (prompt.size() < 70) prompt.push_back(golden.input_ids[prompt.size() % golden.input_ids.size()]);
    auto prefill = [&](LoadedModel &m, std::vector<float> &logits) {
        ForwardOptions fo;
        fo.experts_per_token = m.experts_per_token;
        const auto state = m.model->create_state(int32_t(prompt.size()));
        logits.assign(size_t(m.config.vocab_size), 0.0f);
        ExpertIoStats io;
        m.model->forward(*state, 0, prompt, fo, logits.data(), io);
    };
    const auto cpu = load_model(dir, LoadOptions{.backend = "cpu"});
    const auto gpu = load_model(dir, LoadOptions{.backend = "vulkan"});
    auto *vk = dynamic_cast<VulkanBackend *>(gpu->backend.get());
    ASSERT_NE(vk, nullptr);
    std::vector<float> want, first, on_device, on_host;
    prefill(*cpu, want);
    prefill(*gpu, first);  // puts the experts on the device
    const ModelConfig &c = gpu->config;
    const uint64_t sparse = uint64_t(c.n_layers - int64_t(c.mlp_only_layers.size()));
    const uint64_t calls0 = vk->batch_by_id_calls();
    prefill(*gpu, on_device);
    EXPECT_EQ(vk->batch_by_id_calls() - calls0, sparse) << "sparse layers grouped on the device";
    vk->set_device_grouping(false);
    prefill(*gpu, on_host);
    vk->set_device_grouping(true);
    EXPECT_EQ(vk->batch_by_id_calls() - calls0, sparse) << "the switch keeps the host grouping";
    EXPECT_EQ(on_device, on_host) << "max difference " << relative_error(on_device, on_host);
    const double tol = golden_suite::backend_tolerance("vulkan", 2e-3);
    EXPECT_LT(relative_error(on_device, want), tol);
    EXPECT_EQ(argmax(on_device), argmax(want));
}
#endif

INSTANTIATE_TEST_SUITE_P(Architectures, VulkanDeviceStepModel, ::testing::Values("qwen3_moe_tiny", "mixtral_tiny"));

}  // namespace
}  // namespace mst
