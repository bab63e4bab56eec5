// The backend registry. "auto" picks the best backend present: a Vulkan GPU when one is
// usable, else the CPU backend, which is always available.
#include <omp.h>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/log.h"

#ifdef MST_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace mst {

std::vector<BackendInfo> available_backends() {
    std::vector<BackendInfo> out{
        {"cpu", fmt::format("CPU, OpenMP, {} kernels", cpu_isa_name(cpu_isa_best()))},
    };
#ifdef MST_HAVE_VULKAN
    for (const std::string &d : vulkan_device_descriptions()) out.push_back({"vulkan", d});
#endif
    return out;
}

std::unique_ptr<Backend> create_backend(const std::string &name, int n_threads) {
    BackendOptions options;
    options.n_threads = n_threads;
    return create_backend(name, options);
}

std::unique_ptr<Backend> create_backend(const std::string &name, const BackendOptions &options) {
    const int n_threads = options.n_threads;
    if (n_threads < 0) fail(MST_ERR_INVALID_ARGUMENT, "backend '{}': n_threads must be >= 0, got {}", name, n_threads);
    const int threads = n_threads == 0 ? omp_get_num_procs() : n_threads;
    if (name == "cpu") return std::make_unique<CpuBackend>(threads, cpu_isa_from_env());
    if (name == "vulkan") {
#ifdef MST_HAVE_VULKAN
        return create_vulkan_backend(options);
#else
        fail(MST_ERR_BACKEND, "backend 'vulkan': this build of moestream has no Vulkan support (configure with "
             "-DMST_VULKAN=ON; it needs the Vulkan headers and glslangValidator)");
#endif
    }
    if (name == "auto") {
#ifdef MST_HAVE_VULKAN
        // A GPU when one is usable. A CPU implementation of Vulkan (lavapipe) is never
        // chosen here: the CPU backend is faster on the same cores.
        std::string why;
        if (std::unique_ptr<Backend> gpu = try_create_vulkan_gpu(options, why)) {
            log(MST_LOG_INFO, "backend auto: chose vulkan ({})", gpu->name());
            return gpu;
        }
        log(MST_LOG_INFO, "backend auto: chose cpu ({})", why);
#else
        log(MST_LOG_INFO, "backend auto: chose cpu (built without Vulkan)");
#endif
        return std::make_unique<CpuBackend>(threads, cpu_isa_from_env());
    }

    std::string names = "auto";
    for (const BackendInfo &info : available_backends())
        if (names.find(", " + info.name) == std::string::npos) names += ", " + info.name;
    fail(MST_ERR_INVALID_ARGUMENT, "unknown backend '{}' (available: {})", name, names);
}

}  // namespace mst
