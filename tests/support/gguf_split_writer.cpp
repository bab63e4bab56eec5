#include "gguf_split_writer.h"

#include <fmt/format.h>

#include <cstring>

#include "core/file_io.h"
#include "format/gguf_file.h"
#include "gguf_builder.h"

namespace mst::test {
namespace {

// A parsed value in the form the specification stores it.
std::string encode(const GgufValue &v) {
    std::string out;
    if (v.type == GgufValueType::String) {
        put_str(out, v.string);
    } else if (v.type == GgufValueType::Array) {
        put_u32(out, uint32_t(v.element_type));
        put_u64(out, v.count);
        if (v.element_type == GgufValueType::String) {
            for (const std::string &s : v.strings) put_str(out, s);
        } else if (v.element_type == GgufValueType::Array) {
            for (const GgufValue &nested : v.arrays) out += encode(nested);
        } else {
            out.append(reinterpret_cast<const char *>(v.fixed.data()), v.fixed.size());
        }
    } else {
        const size_t size = gguf_value_type_size(v.type);
        for (size_t i = 0; i < size; ++i) out.push_back(char((v.bits >> (8 * i)) & 0xff));
    }
    return out;
}

}  // namespace

std::vector<std::string> split_gguf(const std::string &source, const std::string &prefix, int n_shards) {
    const File file = File::open_read(source);
    const GgufFile g = read_gguf(file);
    std::vector<std::string> paths;
    const size_t per_shard = (g.tensors.size() + size_t(n_shards) - 1) / size_t(n_shards);
    for (int i = 0; i < n_shards; ++i) {
        GgufBuilder b;
        if (i == 0)
            for (const auto &[key, value] : g.metadata)
                if (key != "general.alignment") b.add_raw(key, value.type, encode(value));
        b.add_raw("split.no", GgufValueType::UInt16, std::string{char(i & 0xff), char(i >> 8)});
        b.add_raw("split.count", GgufValueType::UInt16, std::string{char(n_shards & 0xff), char(n_shards >> 8)});
        b.add_raw("split.tensors.count", GgufValueType::Int32, [&] {
            std::string s;
            put_u32(s, uint32_t(g.tensors.size()));
            return s;
        }());
        for (size_t t = size_t(i) * per_shard; t < std::min(g.tensors.size(), size_t(i + 1) * per_shard); ++t) {
            const GgufTensor &tensor = g.tensors[t];
            std::string bytes(tensor.nbytes, '\0');
            file.pread_exact(bytes.data(), bytes.size(), tensor.offset);
            b.add_tensor(tensor.name, tensor.type, tensor.ne, std::move(bytes));
        }
        paths.push_back(fmt::format("{}-{:05}-of-{:05}.gguf", prefix, i + 1, n_shards));
        b.write(paths.back());
    }
    return paths;
}

void rewrite_gguf(const std::string &source, const std::string &destination,
                  const std::function<void(GgufBuilder &)> &add, const std::function<bool(const std::string &)> &keep) {
    const File file = File::open_read(source);
    const GgufFile g = read_gguf(file);
    GgufBuilder b;
    for (const auto &[key, value] : g.metadata)
        if (key != "general.alignment" && (!keep || keep(key))) b.add_raw(key, value.type, encode(value));
    add(b);
    for (const GgufTensor &tensor : g.tensors) {
        std::string bytes(tensor.nbytes, '\0');
        file.pread_exact(bytes.data(), bytes.size(), tensor.offset);
        b.add_tensor(tensor.name, tensor.type, tensor.ne, std::move(bytes));
    }
    b.write(destination);
}

}  // namespace mst::test
