// The backend registry. "auto" picks the best backend present; today that is the CPU
// backend, which is always available.
#include <omp.h>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "core/error.h"

namespace mst {

std::vector<BackendInfo> available_backends() {
    return {
        {"cpu", fmt::format("CPU, OpenMP, {} kernels", cpu_isa_name(cpu_isa_best()))},
    };
}

std::unique_ptr<Backend> create_backend(const std::string &name, int n_threads) {
    if (n_threads < 0) fail(MST_ERR_INVALID_ARGUMENT, "backend '{}': n_threads must be >= 0, got {}", name, n_threads);
    const int threads = n_threads == 0 ? omp_get_num_procs() : n_threads;
    if (name == "cpu" || name == "auto") return std::make_unique<CpuBackend>(threads, cpu_isa_from_env());

    std::string names = "auto";
    for (const BackendInfo &info : available_backends()) names += ", " + info.name;
    fail(MST_ERR_INVALID_ARGUMENT, "unknown backend '{}' (available: {})", name, names);
}

}  // namespace mst
