// Reads a GGUF file's header, metadata and tensor infos through a bounded cursor: every
// read checks that the file holds the bytes first, so truncation and lengths past the end
// are named errors rather than reads of garbage or huge allocations.
#include <algorithm>
#include <cstring>
#include <functional>

#include "core/error.h"
#include "core/file_io.h"
#include "format/gguf_file.h"

namespace mst {
namespace {

// Bytes of the file in order, fetched in chunks (a GGUF header of a large vocabulary
// is several MiB; reading it field by field would be a syscall per token).
class Cursor {
public:
    using Fetch = std::function<void(void *dst, size_t n, uint64_t offset)>;
    Cursor(uint64_t size, Fetch fetch, const std::string &origin) : size_(size), fetch_(std::move(fetch)), origin_(origin) {}

    uint64_t pos() const { return pos_; }
    uint64_t size() const { return size_; }
    uint64_t remaining() const { return size_ - pos_; }

    // n bytes at the cursor into dst; `what` names the field for the error.
    void take(void *dst, uint64_t n, const char *what, std::string_view context = {}) {
        if (n > remaining())
            fail(MST_ERR_BAD_FORMAT, "{}: truncated GGUF: {}{} at offset {} needs {} bytes, the file has {}", origin_,
                 what, of(context), pos_, n, size_);
        auto *out = static_cast<uint8_t *>(dst);
        while (n > 0) {
            if (pos_ < chunk_start_ || pos_ >= chunk_start_ + chunk_.size()) refill();
            const uint64_t in_chunk = pos_ - chunk_start_;
            const uint64_t k = std::min<uint64_t>(n, chunk_.size() - in_chunk);
            std::memcpy(out, chunk_.data() + in_chunk, size_t(k));
            out += k;
            pos_ += k;
            n -= k;
        }
    }
    template <typename T>
    T read(const char *what, std::string_view context = {}) {
        T v{};
        take(&v, sizeof v, what, context);  // GGUF is little-endian, as every host moestream builds for
        return v;
    }
    std::string read_string(const char *what, std::string_view context = {}) {
        const uint64_t at = pos_;
        const auto n = read<uint64_t>(what, context);
        if (n > remaining())
            fail(MST_ERR_BAD_FORMAT, "{}: {}{} at offset {} has length {}, past the end of the file ({} bytes)",
                 origin_, what, of(context), at, n, size_);
        std::string s(size_t(n), '\0');
        take(s.data(), n, what, context);
        return s;
    }

private:
    static std::string of(std::string_view context) {
        return context.empty() ? std::string() : " of '" + std::string(context) + "'";
    }
    void refill() {
        static constexpr uint64_t kChunk = uint64_t(1) << 20;
        chunk_start_ = pos_;
        chunk_.resize(size_t(std::min(kChunk, size_ - pos_)));
        fetch_(chunk_.data(), chunk_.size(), chunk_start_);
    }

    uint64_t size_;
    Fetch fetch_;
    const std::string &origin_;
    uint64_t pos_ = 0;
    uint64_t chunk_start_ = 0;
    std::vector<uint8_t> chunk_;
};

class Parser {
public:
    Parser(Cursor &cur, GgufFile &out) : cur_(cur), out_(out) {}

    void run() {
        read_header();
        for (uint64_t i = 0; i < n_kv_; ++i) read_kv(i);
        read_alignment();
        for (uint64_t i = 0; i < n_tensors_; ++i) read_tensor_info(i);
        const uint64_t end = cur_.pos();
        out_.data_offset = end + (out_.alignment - end % out_.alignment) % out_.alignment;
        for (GgufTensor &t : out_.tensors) place_tensor(t);
        check_overlaps();
    }

private:
    const std::string &origin() const { return out_.path; }

    void read_header() {
        char magic[4];
        cur_.take(magic, 4, "magic");
        if (std::memcmp(magic, kGgufMagic, 4) != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: not a GGUF file (the first bytes are not 'GGUF')", origin());
        const auto version = cur_.read<uint32_t>("version");
        // A big-endian file (GGUF v3 allows one) reads here with its version byte-swapped.
        if (version >= (1u << 16) && (version & 0xffffu) == 0)
            fail(MST_ERR_UNSUPPORTED, "{}: a big-endian GGUF file (version bytes {:#010x}); moestream reads little-endian ones",
                 origin(), version);
        if (version == 1)
            fail(MST_ERR_UNSUPPORTED, "{}: GGUF version 1 (32-bit counts) is not supported; re-convert to version 3",
                 origin());
        if (version != 2 && version != 3)
            fail(MST_ERR_UNSUPPORTED, "{}: GGUF version {} is not supported (versions 2 and 3 are)", origin(), version);
        out_.version = version;
        n_tensors_ = cur_.read<uint64_t>("tensor count");
        n_kv_ = cur_.read<uint64_t>("metadata count");
        // Each key/value takes at least 13 bytes (key length, type, a 1-byte value) and each
        // tensor info 28 (name length, dimension count, one dimension, type, offset): a
        // count the rest of the file cannot hold is a corrupt header, refused before any
        // allocation it would drive.
        if (n_kv_ > cur_.remaining() / 13)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata count {} cannot fit in the file ({} bytes)", origin(), n_kv_,
                 cur_.size());
        if (n_tensors_ > cur_.remaining() / 28)
            fail(MST_ERR_BAD_FORMAT, "{}: tensor count {} cannot fit in the file ({} bytes)", origin(), n_tensors_,
                 cur_.size());
    }

    GgufValueType read_type(const std::string &key, const char *what) {
        const uint64_t at = cur_.pos();
        const auto type = cur_.read<uint32_t>(what, key);
        if (type >= kGgufValueTypeCount)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' has unknown {} {} at offset {}", origin(), key, what, type, at);
        return GgufValueType(type);
    }

    void read_kv(uint64_t index) {
        const uint64_t at = cur_.pos();
        std::string key = cur_.read_string("metadata key");
        if (key.empty() || key.size() > 65535)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata entry {} at offset {} has a key of {} bytes (1..65535 allowed)",
                 origin(), index, at, key.size());
        if (out_.key_index.count(key))
            fail(MST_ERR_BAD_FORMAT, "{}: metadata key '{}' appears twice (again at offset {})", origin(), key, at);
        GgufValue value;
        value.type = read_type(key, "value type");
        read_value(value, key, 0);
        out_.key_index.emplace(key, out_.metadata.size());
        out_.metadata.emplace_back(std::move(key), std::move(value));
    }

    void read_value(GgufValue &v, const std::string &key, int depth) {
        if (v.type == GgufValueType::String) {
            v.string = cur_.read_string("string value", key);
        } else if (v.type == GgufValueType::Array) {
            read_array(v, key, depth);
        } else {
            const size_t n = gguf_value_type_size(v.type);
            cur_.take(&v.bits, n, "value", key);
            if (v.type == GgufValueType::Bool && v.bits > 1)
                fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' is a BOOL of value {}, not 0 or 1", origin(), key, v.bits);
        }
    }

    void read_array(GgufValue &v, const std::string &key, int depth) {
        if (depth >= kGgufMaxArrayDepth)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' nests arrays deeper than {}", origin(), key, kGgufMaxArrayDepth);
        v.element_type = read_type(key, "array element type");
        const uint64_t at = cur_.pos();
        v.count = cur_.read<uint64_t>("array length", key);
        // The smallest element: its fixed size, a string's 8-byte length, an array's
        // 12-byte type and length.
        const uint64_t min_size = v.element_type == GgufValueType::String  ? 8
                                  : v.element_type == GgufValueType::Array ? 12
                                                                           : gguf_value_type_size(v.element_type);
        if (v.count > cur_.remaining() / min_size)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' at offset {} claims {} elements of {}, past the end of the file",
                 origin(), key, at, v.count, gguf_value_type_name(v.element_type));
        // Strings and nested arrays grow as they parse rather than by the count: an element
        // in memory is larger than its smallest form in the file, so reserving by a forged
        // count could ask for several times the file's size up front.
        if (v.element_type == GgufValueType::String) {
            v.strings.reserve(size_t(std::min<uint64_t>(v.count, uint64_t(1) << 16)));
            for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(cur_.read_string("string element", key));
        } else if (v.element_type == GgufValueType::Array) {
            for (uint64_t i = 0; i < v.count; ++i) {
                GgufValue inner;
                inner.type = GgufValueType::Array;
                read_array(inner, key, depth + 1);
                v.arrays.push_back(std::move(inner));
            }
        } else {
            v.fixed.resize(size_t(v.count * min_size));
            cur_.take(v.fixed.data(), v.fixed.size(), "array elements", key);
            if (v.element_type == GgufValueType::Bool)
                for (uint64_t i = 0; i < v.count; ++i)
                    if (v.fixed[size_t(i)] > 1)
                        fail(MST_ERR_BAD_FORMAT, "{}: metadata '{}' element {} is a BOOL of value {}, not 0 or 1",
                             origin(), key, i, v.fixed[size_t(i)]);
        }
    }

    void read_alignment() {
        const GgufValue *a = out_.find("general.alignment");
        if (!a) return;
        if (a->type != GgufValueType::UInt32)
            fail(MST_ERR_BAD_FORMAT, "{}: metadata 'general.alignment' is {}, expected UINT32", origin(),
                 gguf_value_type_name(a->type));
        const auto alignment = uint32_t(a->bits);
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: general.alignment {} is not a power of two", origin(), alignment);
        out_.alignment = alignment;
    }

    void read_tensor_info(uint64_t index) {
        const uint64_t at = cur_.pos();
        GgufTensor t;
        t.name = cur_.read_string("tensor name");
        if (t.name.empty()) fail(MST_ERR_BAD_FORMAT, "{}: tensor {} at offset {} has an empty name", origin(), index, at);
        const auto n_dims = cur_.read<uint32_t>("dimension count", t.name);
        if (n_dims > kGgufMaxDims)
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' has {} dimensions (at most {})", origin(), t.name, n_dims,
                 kGgufMaxDims);
        uint64_t n_elems = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const auto dim = cur_.read<uint64_t>("dimension", t.name);
            if (dim > uint64_t(INT64_MAX) || __builtin_mul_overflow(n_elems, dim, &n_elems) ||
                n_elems > uint64_t(INT64_MAX))
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' dimension {} ({}) makes its element count overflow", origin(),
                     t.name, d, dim);
            t.ne.push_back(dim);
        }
        t.type = cur_.read<uint32_t>("tensor type", t.name);
        const auto info = ggml_type_info(t.type);
        if (!info)
            fail(MST_ERR_UNSUPPORTED, "{}: tensor '{}' has unknown ggml type {}", origin(), t.name, t.type);
        const uint64_t row = t.ne.empty() ? 1 : t.ne[0];
        if (row % info->block_elems != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' of type {} has rows of {} elements, not a multiple of its block of {}",
                 origin(), t.name, info->name, row, info->block_elems);
        if (__builtin_mul_overflow(n_elems / info->block_elems, uint64_t(info->block_bytes), &t.nbytes))
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' byte size overflows", origin(), t.name);
        t.offset = cur_.read<uint64_t>("tensor offset", t.name);  // relative until place_tensor
        if (out_.tensor_index.count(t.name))
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' appears twice (again at offset {})", origin(), t.name, at);
        out_.tensor_index.emplace(t.name, out_.tensors.size());
        out_.tensors.push_back(std::move(t));
    }

    void place_tensor(GgufTensor &t) {
        if (t.offset % out_.alignment != 0)
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' data offset {} is not a multiple of the alignment {}", origin(),
                 t.name, t.offset, out_.alignment);
        uint64_t begin = 0, end = 0;
        if (__builtin_add_overflow(out_.data_offset, t.offset, &begin) || __builtin_add_overflow(begin, t.nbytes, &end) ||
            end > cur_.size())
            fail(MST_ERR_BAD_FORMAT,
                 "{}: tensor '{}' data [{}, +{}) (offset {} after the data section at {}) lies past the end of the "
                 "file ({} bytes)",
                 origin(), t.name, begin, t.nbytes, t.offset, out_.data_offset, cur_.size());
        t.offset = begin;
    }

    // Two tensors sharing bytes would let one file alias weights in ways no writer
    // produces; it is a sign of a corrupt or crafted file.
    void check_overlaps() const {
        std::vector<const GgufTensor *> order;
        for (const GgufTensor &t : out_.tensors)
            if (t.nbytes > 0) order.push_back(&t);
        std::sort(order.begin(), order.end(), [](const GgufTensor *a, const GgufTensor *b) { return a->offset < b->offset; });
        for (size_t i = 1; i < order.size(); ++i)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
                fail(MST_ERR_BAD_FORMAT, "{}: tensors '{}' and '{}' overlap at offset {}", origin(), order[i - 1]->name,
                     order[i]->name, order[i]->offset);
    }

    Cursor &cur_;
    GgufFile &out_;
    uint64_t n_tensors_ = 0, n_kv_ = 0;
};

}  // namespace

bool has_gguf_magic(std::span<const uint8_t> first_bytes) {
    return first_bytes.size() >= 4 && std::memcmp(first_bytes.data(), kGgufMagic, 4) == 0;
}

GgufFile read_gguf(const File &file) {
    GgufFile out;
    out.path = file.path();
    Cursor cur(file.size(), [&](void *dst, size_t n, uint64_t offset) { file.pread_exact(dst, n, offset); }, out.path);
    Parser(cur, out).run();
    return out;
}

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string &origin) {
    GgufFile out;
    out.path = origin;
    Cursor cur(bytes.size(), [&](void *dst, size_t n, uint64_t offset) { std::memcpy(dst, bytes.data() + offset, n); },
               out.path);
    Parser(cur, out).run();
    return out;
}

}  // namespace mst
