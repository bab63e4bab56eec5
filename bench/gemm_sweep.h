// The tuning sweep of bench_vulkan_prefill --sweep (docs/gpu_prefill.md): every product is run
// once under main's GEMM kernel (the reference) and once under each tuning of the list
// (GemmTuning, MST_VULKAN_COOP_TUNING's values); a tuning whose result strays from the
// reference is reported wrong and not timed. The others are timed in rounds, every tuning
// once a round in the list's order (interleaved, so the machine's drift falls on all of
// them alike), by the device time of the product's GEMM dispatches from the per-command
// profile (MST_VULKAN_PROFILE=2, set before the backend is made).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backends/vulkan/vulkan_backend.h"
#include "core/error.h"

namespace mst::sweep {

struct Product {
    std::string name;
    double flops = 0;  // a run's
    // The profile's keys ("<shader variant> <grid>") charged to the product.
    std::function<bool(const std::string &key)> charged;
    // Runs the product once (its own batch), its result into out.
    std::function<void(std::vector<float> &out)> run;
    // Whether its GEMMs are grouped (routed experts): a tuning is set for that kind only (the
    // other keeps main's kernel), so that it needs to fit only that kind's variants.
    bool grouped = false;
    // Its weights' type and whether its dispatches fuse SwiGLU: a tuning whose variant for
    // them does not fit the device would run main's kernel (VulkanBackend::gemm_tuning_for)
    // and is reported not run instead of timed as if it were the tuning's. F32: the type
    // that stages most.
    DType type = DType::F32;
    bool swiglu = false;
};

struct Row {
    GemmTuning tuning;
    std::string status = "ok";  // ok, wrong (not timed), or "not run: why"
    double max_error = 0;       // max |result - main's| over max |main's|
    std::vector<double> seconds;  // device time of each timed run
    bool ok() const { return status == "ok"; }
};

// max |got - want| / max |want|: the worst element against the result's scale (an element
// near zero does not blow it up); infinite for a NaN or a size that differs.
inline double max_error(const std::vector<float> &got, const std::vector<float> &want) {
    if (got.size() != want.size()) return INFINITY;
    double scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        scale = std::max(scale, double(std::fabs(want[i])));
        const double d = std::fabs(double(got[i]) - double(want[i]));
        if (!(d == d)) return INFINITY;
        worst = std::max(worst, d);
    }
    return scale > 0 ? worst / scale : worst;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Device seconds charged to p by one run of it.
inline double device_seconds(VulkanBackend &b, const Product &p, std::vector<float> &out) {
    CommandStream &stream = b.stream();
    stream.clear_dispatch_profile();
    p.run(out);
    double s = 0;
    bool any = false;
    for (const auto &[key, stat] : stream.dispatch_profile())
        if (p.charged(key)) {
            s += stat.seconds;
            any = true;
        }
    if (!any)
        fail(MST_ERR_INTERNAL, "sweep of '{}': no profiled dispatch charged to it (is MST_VULKAN_PROFILE=2 set?)", p.name);
    return s;
}

// One row per tuning, main's kernel (GemmTuning{}) first whether listed or not. The
// backend's tuning is main's afterwards.
inline std::vector<Row> run(VulkanBackend &b, const Product &p, const std::vector<GemmTuning> &tunings, int rounds,
                            double bound) {
    std::vector<Row> rows(1);
    for (const GemmTuning &t : tunings)
        if (t.tuned()) {
            rows.emplace_back();
            rows.back().tuning = t;
        }
    std::string why;
    std::vector<float> want, got;
    auto set = [&](const GemmTuning &t) {
        return p.grouped ? b.set_gemm_tunings(GemmTuning{}, t, why) : b.set_gemm_tunings(t, GemmTuning{}, why);
    };
    b.set_gemm_tuning(GemmTuning{}, why);
    p.run(want);
    for (Row &r : rows) {
        if (!set(r.tuning)) {
            r.status = "not run: " + why;
            continue;
        }
        if (b.gemm_tuning_for(p.type, p.grouped, p.swiglu) != r.tuning) {
            r.status = "not run: its " + std::string(dtype_name(p.type)) + (p.swiglu ? " SwiGLU" : "") +
                       " variant needs more shared memory than the device has (main's kernel would run)";
            continue;
        }
        try {
            got.assign(want.size(), NAN);
            p.run(got);
        } catch (const Error &e) {
            r.status = std::string("not run: ") + e.what();
            continue;
        }
        r.max_error = max_error(got, want);
        if (!(r.max_error <= bound)) r.status = "wrong";
    }
    for (int round = 0; round < rounds; ++round)
        for (Row &r : rows) {
            if (!r.ok()) continue;
            set(r.tuning);
            r.seconds.push_back(device_seconds(b, p, got));
        }
    b.set_gemm_tuning(GemmTuning{}, why);
    return rows;
}

}  // namespace mst::sweep
