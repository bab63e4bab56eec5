#include "gguf_info.h"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <system_error>

#include "core/file_io.h"
#include "format/gguf_summary.h"
#include "human.h"

namespace mst::cli {

bool print_gguf_info(const std::string &path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;
    const File file = File::open_read(path);
    std::array<uint8_t, 4> magic{};
    if (file.size() < magic.size()) return false;
    file.pread_exact(magic.data(), magic.size(), 0);
    if (!has_gguf_magic(magic)) return false;
    const GgufSummary s = summarize_gguf(read_gguf(file));
    fmt::print("GGUF file:           version {}, architecture '{}', {} tensors ({}), {} metadata keys\n", s.version,
               s.architecture, s.n_tensors, bytes_str(s.tensor_bytes), s.n_metadata);
    for (const GgufTensorGroup &g : s.groups) {
        std::string types;
        for (const auto &[type, n] : g.types) types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", type, n);
        fmt::print("  {:<28} {:>4} tensors {:>10}  {}{}\n", g.name, g.n_tensors, bytes_str(g.bytes), types,
                   g.routed_experts ? "  (routed experts, streamed)" : "");
    }
    if (s.n_moe_layers > 0)
        fmt::print("GGUF experts:        {} per layer in {} layers, {} in all; {} per token ({} experts x {} layers)\n",
                   s.n_experts, s.n_moe_layers, bytes_str(s.expert_bytes_total), bytes_str(s.expert_bytes_per_token),
                   s.experts_per_token, s.n_moe_layers);
    return true;
}

}  // namespace mst::cli
