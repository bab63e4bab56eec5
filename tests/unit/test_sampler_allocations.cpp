// A decode step's sampling allocates nothing once a session has sampled before: every
// fresh vector of the vocabulary's size is zero-filled and page-faulted, which over 152k
// logits cost more than a GPU's decode step (issue 17). This program counts every
// operator new of the thread that samples, through the C API as an application calls it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>

#include "moestream.h"
#include "test_paths.h"

namespace {

thread_local bool counting = false;
thread_local size_t allocations = 0;

void *allocate(size_t n) {
    if (counting) ++allocations;
    if (void *p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}

}  // namespace

void *operator new(size_t n) { return allocate(n); }
void *operator new[](size_t n) { return allocate(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
void operator delete[](void *p, size_t) noexcept { std::free(p); }

namespace {

struct Sampler {
    const char *name;
    float temperature;
    int32_t top_k;
    float top_p, min_p, repetition_penalty;
};

TEST(SamplerAllocations, ASessionSamplesWithoutAllocatingAfterItsFirstDraw) {
    mst_model_params params;
    mst_model_default_params(&params);
    params.backend = "cpu";
    mst_model *model = nullptr;
    ASSERT_EQ(mst_model_load(mst::test::data_path("qwen3_moe_tiny").c_str(), &params, &model), MST_OK)
        << mst_last_error();
    mst_session *session = nullptr;
    ASSERT_EQ(mst_session_create(model, nullptr, &session), MST_OK) << mst_last_error();
    const int32_t prompt[] = {5, 6, 7, 8, 9};
    ASSERT_EQ(mst_session_eval(session, prompt, 5), MST_OK) << mst_last_error();

    for (const Sampler &s : {Sampler{"greedy", 0.0f, 40, 0.95f, 0.05f, 1.0f},
                             Sampler{"the defaults", 0.8f, 40, 0.95f, 0.05f, 1.0f},
                             Sampler{"the whole vocabulary", 1.0f, 0, 1.0f, 0.0f, 1.0f},
                             Sampler{"top-p over the whole vocabulary", 0.7f, 0, 0.9f, 0.0f, 1.0f},
                             Sampler{"a repetition penalty", 0.8f, 40, 0.95f, 0.05f, 1.3f}}) {
        mst_sampler_params p;
        mst_sampler_default_params(&p);
        p.temperature = s.temperature;
        p.top_k = s.top_k;
        p.top_p = s.top_p;
        p.min_p = s.min_p;
        p.repetition_penalty = s.repetition_penalty;
        int32_t token = -1;
        ASSERT_EQ(mst_session_sample(session, &p, &token), MST_OK) << mst_last_error();  // grows the memory
        allocations = 0;
        counting = true;
        for (int i = 0; i < 5; ++i) mst_session_sample(session, &p, &token);
        counting = false;
        EXPECT_EQ(allocations, 0u) << s.name << ": 5 draws allocated " << allocations << " times";
        EXPECT_GE(token, 0);
    }
    mst_session_free(session);
    mst_model_free(model);
}

}  // namespace
