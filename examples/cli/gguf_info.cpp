#include "gguf_info.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <string>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "core/file_io.h"
#include "format/gguf_split.h"
#include "format/gguf_summary.h"
#include "human.h"
#include "moestream.hpp"

namespace mst::cli {

bool print_gguf_info(const std::string &path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;
    const File file = File::open_read(path);
    std::array<uint8_t, 4> magic{};
    if (file.size() < magic.size()) return false;
    file.pread_exact(magic.data(), magic.size(), 0);
    if (!has_gguf_magic(magic)) return false;
    GgufSummary s;
    try {
        GgufFile gguf = read_gguf(file);
        open_gguf_shards(gguf);  // a split model's other shards: their tensors join the first's
        s = summarize_gguf(gguf);
    } catch (const Error &e) {  // as the C API reports it: main prints it and exits 1
        throw Exception(e.code(), e.what());
    }
    fmt::print("GGUF file:           version {}, architecture '{}', {} tensors ({}), {} metadata keys{}\n", s.version,
               s.architecture, s.n_tensors, bytes_str(s.tensor_bytes), s.n_metadata,
               s.n_files > 1 ? fmt::format(", split in {} files", s.n_files) : "");
    const auto types_str = [](const std::map<std::string, uint64_t> &types) {
        std::string out;
        for (const auto &[type, n] : types) out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", type, n);
        return out;
    };
    fmt::print("GGUF types by role:\n");
    for (const GgufRoleGroup &g : s.roles)
        fmt::print("  {:<28} {:>4} tensors {:>10}  {}{}\n", gguf_tensor_role_name(g.role), g.n_tensors,
                   bytes_str(g.bytes), types_str(g.types),
                   g.role == GgufTensorRole::kRoutedExperts ? "  (streamed)" : "");
    fmt::print("GGUF types by tensor name:\n");
    for (const GgufTensorGroup &g : s.groups)
        fmt::print("  {:<28} {:>4} tensors {:>10}  {}{}\n", g.name, g.n_tensors, bytes_str(g.bytes), types_str(g.types),
                   g.routed_experts ? "  (routed experts, streamed)" : "");
    if (s.n_moe_layers > 0)
        fmt::print("GGUF experts:        {} per layer in {} layers, {} in all; {} per token ({} experts x {} layers)\n",
                   s.n_experts, s.n_moe_layers, bytes_str(s.expert_bytes_total), bytes_str(s.expert_bytes_per_token),
                   s.experts_per_token, s.n_moe_layers);
    return true;
}

}  // namespace mst::cli
