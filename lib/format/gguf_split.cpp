#include "format/gguf_split.h"

#include <fmt/format.h>

#include <regex>

#include "core/error.h"

namespace mst {
namespace {

// gguf-split's shard names: <prefix>-%05d-of-%05d.gguf, numbered from 1.
const std::regex &shard_name() {
    static const std::regex pattern(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
    return pattern;
}

}  // namespace

std::string gguf_shard_path(const std::string &first, uint64_t no, uint64_t count) {
    std::smatch m;
    if (!std::regex_match(first, m, shard_name()))
        fail(MST_ERR_BAD_FORMAT, "{}: a shard of a split GGUF ({} shards) must be named <name>-00001-of-{:05}.gguf",
             first, count, count);
    return fmt::format("{}-{:05}-of-{:05}.gguf", m[1].str(), no + 1, count);
}

std::vector<std::pair<std::string, File>> open_gguf_shards(GgufFile &first) {
    const uint64_t count = first.find_uint("split.count").value_or(1);
    if (count <= 1) return {};
    if (count > 99999) fail(MST_ERR_BAD_FORMAT, "{}: split.count is {}, more than gguf-split numbers", first.path, count);
    const uint64_t no = first.find_uint("split.no").value_or(0);
    if (no != 0)
        fail(MST_ERR_INVALID_ARGUMENT, "{} is shard {} of {} of a split GGUF; pass the first one, {}", first.path,
             no + 1, count, gguf_shard_path(first.path, 0, count));
    const uint64_t total = first.require_uint("split.tensors.count");
    std::vector<std::pair<std::string, File>> shards;
    for (uint64_t i = 1; i < count; ++i) {
        const std::string path = gguf_shard_path(first.path, i, count);
        File file = File::open_read(path);
        const GgufFile shard = read_gguf(file);
        if (shard.find_uint("split.count").value_or(1) != count || shard.find_uint("split.no").value_or(0) != i)
            fail(MST_ERR_BAD_FORMAT, "{}: split.no / split.count say shard {} of {}, expected shard {} of {}", path,
                 shard.find_uint("split.no").value_or(0) + 1, shard.find_uint("split.count").value_or(1), i + 1,
                 count);
        for (const GgufTensor &t : shard.tensors) {
            if (first.tensor_index.contains(t.name))
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' is in an earlier shard too", path, t.name);
            first.tensor_index.emplace(t.name, first.tensors.size());
            first.tensors.push_back(t);
            first.tensors.back().file = uint32_t(i);
        }
        shards.emplace_back(path, std::move(file));
    }
    if (first.tensors.size() != total)
        fail(MST_ERR_BAD_FORMAT, "{}: the {} shards hold {} tensors, split.tensors.count says {}", first.path, count,
             first.tensors.size(), total);
    return shards;
}

}  // namespace mst
