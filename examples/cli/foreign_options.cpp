#include "foreign_options.h"

#include <map>

namespace mst::cli {

std::optional<std::string> foreign_option_hint(const std::string &word) {
    static const std::string gpu_layers =
        "moestream does not split layers between CPU and GPU (llama.cpp's GPU layer count); "
        "--backend vulkan runs every layer on the GPU, --backend cpu none, and experts stream from disk either way";
    static const std::map<std::string, std::string> hints = {
        {"-ngl", gpu_layers},
        {"--gpu-layers", gpu_layers},
        {"--n-gpu-layers", gpu_layers},
        {"--no-mmap", "experts are read with --storage pread, direct or uring instead of mmap "
                      "(non-expert weights are always read into memory)"},
    };
    const std::string name = word.substr(0, word.find('='));
    if (auto it = hints.find(name); it != hints.end()) return it->second;
    return std::nullopt;
}

}  // namespace mst::cli
