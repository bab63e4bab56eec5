// The backends the golden tests run on (golden_model_suite.h, and the fixtures that
// architectures derive from it for tests of their own): helpers to instantiate a suite
// over them.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/error.h"

namespace golden_suite {

// Every golden test runs on each backend: the suites are instantiated over
// with_backends(datasets()). A backend that cannot run here (no Vulkan device, a build
// without Vulkan) skips its tests, saying why.
inline const std::vector<std::string> &golden_backends() {
    static const std::vector<std::string> backends{"cpu", "vulkan"};
    return backends;
}

// Each dataset once per backend; the CPU keeps the dataset's name, others get a suffix.
template <typename Dataset>
std::vector<Dataset> with_backends(const std::vector<Dataset> &datasets) {
    std::vector<Dataset> out;
    for (const std::string &backend : golden_backends())
        for (Dataset d : datasets) {
            d.backend = backend;
            if (backend != "cpu") d.name += "_" + backend;
            out.push_back(d);
        }
    return out;
}

// "" when `backend` can run here, else why not (checked once per backend).
inline std::string backend_unavailable(const std::string &backend) {
    if (backend == "cpu") return "";
    static const std::string why = [&] {
        try {
            mst::create_backend(backend, 1);
            return std::string();
        } catch (const mst::Error &e) {
            return std::string(e.what());
        }
    }();
    return why.empty() ? "" : "no Vulkan device found: " + why;
}

// The bound on the relative error of all logits: a dataset's own on the CPU; a GPU sums
// in other orders and its exp is a few ulp off, so it is held to 2e-3 (the Vulkan
// backend's bound) when that is looser.
inline double backend_tolerance(const std::string &backend, double tolerance) {
    return backend == "cpu" ? tolerance : std::max(tolerance, 2e-3);
}

}  // namespace golden_suite
