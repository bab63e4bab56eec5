#include "format/checkpoint.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "format/gguf_file.h"
#include "format/resident_mapping.h"

namespace mst {

namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path &path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);
}

// For messages about a path that is neither a file nor a directory.
const char *file_type_name(fs::file_type type) {
    switch (type) {
        case fs::file_type::fifo: return "a FIFO (named pipe)";
        case fs::file_type::character: return "a character device";
        case fs::file_type::block: return "a block device";
        case fs::file_type::socket: return "a socket";
        default: return "not a regular file";
    }
}

// A shard named by an index must be a plain file name in the checkpoint directory:
// an index is untrusted input and must not point the loader elsewhere.
bool is_plain_file_name(const std::string &name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
}

// The weight_map of an index file: tensor name -> shard file name.
std::map<std::string, std::string> read_weight_map(const std::string &index_path) {
    const std::string text = read_text_file(index_path, Checkpoint::kMaxIndexBytes);
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception &e) {
        fail(MST_ERR_BAD_FORMAT, "{}: not valid JSON: {}", index_path, e.what());
    }
    if (!root.is_object()) fail(MST_ERR_BAD_FORMAT, "{}: not a JSON object", index_path);
    const auto map_it = root.find("weight_map");
    if (map_it == root.end()) fail(MST_ERR_BAD_FORMAT, "{}: lacks 'weight_map'", index_path);
    if (!map_it->is_object()) fail(MST_ERR_BAD_FORMAT, "{}: 'weight_map' is not a JSON object", index_path);
    std::map<std::string, std::string> weight_map;
    for (const auto &[tensor, shard] : map_it->items()) {
        if (!shard.is_string()) {
            fail(MST_ERR_BAD_FORMAT, "{}: 'weight_map' entry for tensor '{}' is not a string", index_path, tensor);
        }
        const auto &shard_name = shard.get_ref<const std::string &>();
        if (!is_plain_file_name(shard_name)) {
            fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' maps to '{}', which is not a file name in the directory",
                 index_path, tensor, shard_name);
        }
        weight_map.emplace(tensor, shard_name);
    }
    if (weight_map.empty()) fail(MST_ERR_BAD_FORMAT, "{}: 'weight_map' is empty", index_path);
    return weight_map;
}

// Every *.safetensors file directly in dir, sorted by name.
std::vector<std::string> list_safetensors(const std::string &dir) {
    std::vector<std::string> found;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) fail(MST_ERR_IO, "cannot list checkpoint directory '{}': {}", dir, ec.message());
    for (const fs::directory_iterator end; it != end; it.increment(ec)) {
        const fs::path &path = it->path();
        if (path.extension() == ".safetensors" && is_file(path)) found.push_back(path.string());
    }
    if (ec) fail(MST_ERR_IO, "cannot list checkpoint directory '{}': {}", dir, ec.message());
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace

void Checkpoint::add_file(const std::string &path) {
    if (paths_.size() >= size_t(UINT32_MAX)) fail(MST_ERR_BAD_FORMAT, "checkpoint '{}' has too many files", dir_);
    const auto file_index = uint32_t(paths_.size());
    File file = File::open_read(path);
    SafetensorsHeader header = read_safetensors_header(file);
    for (TensorInfo &tensor : header.tensors) {
        const auto [it, inserted] = by_name_.emplace(tensor.name, tensors_.size());
        if (!inserted) {
            fail(MST_ERR_BAD_FORMAT, "checkpoint '{}': tensor '{}' is in both {} and {}", dir_, tensor.name,
                 paths_[tensors_[it->second].file_index], path);
        }
        tensor.file_index = file_index;
        tensors_.push_back(std::move(tensor));
    }
    paths_.push_back(path);
    files_.push_back(std::move(file));
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string &dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) fail(MST_ERR_IO, "checkpoint directory '{}' does not exist", dir);
    if (is_file(dir)) {
        File file = File::open_read(dir);
        std::array<uint8_t, 4> magic{};
        if (file.size() >= magic.size()) file.pread_exact(magic.data(), magic.size(), 0);
        if (has_gguf_magic(magic)) return open_gguf(dir, std::move(file));
        return open_packed(dir, std::move(file));
    }
    // Opening a FIFO would block until a writer came, and a device is never a model.
    if (!fs::is_directory(dir, ec))
        fail(MST_ERR_IO, "checkpoint path '{}' is {}, not a directory, a moestream packed file or a GGUF file", dir,
             file_type_name(fs::status(dir, ec).type()));

    std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
    checkpoint->dir_ = dir;
    const fs::path base(dir);
    const fs::path index_path = base / kIndexName;
    const fs::path single_path = base / "model.safetensors";

    // transformers prefers a single model.safetensors over an index; so do we.
    if (is_file(single_path)) {
        checkpoint->add_file(single_path.string());
    } else if (is_file(index_path)) {
        const std::map<std::string, std::string> weight_map = read_weight_map(index_path.string());
        std::set<std::string> shard_names;
        for (const auto &entry : weight_map) shard_names.insert(entry.second);
        for (const std::string &shard : shard_names) {
            const fs::path shard_path = base / shard;
            if (!is_file(shard_path)) {
                fail(MST_ERR_IO, "{}: shard '{}' does not exist", index_path.string(), shard_path.string());
            }
            checkpoint->add_file(shard_path.string());
        }
        for (const auto &[tensor, shard] : weight_map) {
            const TensorInfo *info = checkpoint->find(tensor);
            if (!info || checkpoint->paths_[info->file_index] != (base / shard).string()) {
                fail(MST_ERR_BAD_FORMAT, "{}: tensor '{}' is mapped to shard '{}', which does not contain it",
                     index_path.string(), tensor, shard);
            }
        }
    } else {
        const std::vector<std::string> shards = list_safetensors(dir);
        if (shards.empty()) fail(MST_ERR_BAD_FORMAT, "checkpoint directory '{}' holds no .safetensors file", dir);
        for (const std::string &shard : shards) checkpoint->add_file(shard);
    }

    // Sorted order for tensors() and names(); rebuild the name index to match.
    std::sort(checkpoint->tensors_.begin(), checkpoint->tensors_.end(),
              [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });
    for (size_t i = 0; i < checkpoint->tensors_.size(); ++i) checkpoint->by_name_[checkpoint->tensors_[i].name] = i;
    return checkpoint;
}

const File &Checkpoint::file(uint32_t index) const {
    if (index >= files_.size()) {
        fail(MST_ERR_INVALID_ARGUMENT, "checkpoint '{}' has {} files, no file {}", dir_, files_.size(), index);
    }
    return files_[index];
}

const TensorInfo *Checkpoint::find(std::string_view name) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) return nullptr;
    if (observer_) observer_(tensors_[it->second]);
    return &tensors_[it->second];
}

const TensorInfo &Checkpoint::require(std::string_view name) const {
    const TensorInfo *info = find(name);
    if (!info) fail(MST_ERR_BAD_FORMAT, "tensor '{}' not found in checkpoint '{}'", name, dir_);
    return *info;
}

const TensorInfo &Checkpoint::require(std::string_view name, std::initializer_list<int64_t> shape) const {
    const TensorInfo &info = require(name);
    if (!std::equal(info.shape.begin(), info.shape.end(), shape.begin(), shape.end())) {
        fail(MST_ERR_BAD_FORMAT, "tensor '{}' has shape {}, expected {} (checkpoint '{}')", name,
             shape_to_string(info.shape), shape_to_string(std::vector<int64_t>(shape)), dir_);
    }
    return info;
}

std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> result;
    result.reserve(tensors_.size());
    for (const TensorInfo &t : tensors_) result.push_back(t.name);
    return result;
}

void Checkpoint::read(const TensorInfo &t, void *dst) const {
    if (observer_) observer_(t);
    // From the verified mapping when there is one: the bytes that were checked.
    if (resident_mapping_ && t.file_index == 0)
        if (const uint8_t *mapped = resident_mapping_->find(t.offset, t.nbytes)) {
            std::memcpy(dst, mapped, size_t(t.nbytes));
            return;
        }
    file(t.file_index).pread_exact(dst, size_t(t.nbytes), t.offset);
}

const uint8_t *Checkpoint::mapped(const TensorInfo &t) const {
    if (!resident_mapping_ || t.file_index != 0) return nullptr;
    const uint8_t *bytes = resident_mapping_->use(t.offset, t.nbytes);
    // GGUF aligns tensors to general.alignment, 32 unless the file says otherwise; a
    // tensor less aligned than a vector load is copied into an aligned buffer instead.
    constexpr uintptr_t kAlignment = 32;
    return bytes && reinterpret_cast<uintptr_t>(bytes) % kAlignment == 0 ? bytes : nullptr;
}

std::vector<float> Checkpoint::read_f32(const TensorInfo &t) const {
    if (!dtype_is_float_weight(t.dtype) && !dtype_is_quantized(t.dtype)) {
        fail(MST_ERR_UNSUPPORTED, "tensor '{}' in checkpoint '{}' has dtype {}, which cannot be read as float32",
             t.name, dir_, dtype_name(t.dtype));
    }
    // A TensorInfo may come from elsewhere than this checkpoint's table; check that it
    // is consistent and inside its file before its sizes drive an allocation.
    const File &f = file(t.file_index);
    if (t.offset > f.size() || t.nbytes > f.size() - t.offset) {
        fail(MST_ERR_INVALID_ARGUMENT, "tensor '{}': bytes [{}, +{}) lie outside {} ({} bytes)", t.name, t.offset,
             t.nbytes, f.path(), f.size());
    }
    // Rows of the last dimension: a block-quantized row holds whole blocks.
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const uint64_t row_bytes = dtype_row_bytes(t.dtype, cols);
    const uint64_t n_rows = row_bytes ? t.nbytes / row_bytes : 0;
    if (n_rows * row_bytes != t.nbytes || int64_t(n_rows) * cols != t.numel()) {
        fail(MST_ERR_INVALID_ARGUMENT, "tensor '{}': {} bytes do not match shape {} of {}", t.name, t.nbytes,
             shape_to_string(t.shape), dtype_name(t.dtype));
    }
    std::vector<float> values(size_t(t.numel()));
    if (t.dtype == DType::F32) {
        read(t, values.data());
        return values;
    }
    std::vector<uint8_t> raw(t.nbytes);
    read(t, raw.data());
    for (uint64_t r = 0; r < n_rows; ++r)
        convert_to_f32(t.dtype, raw.data() + r * row_bytes, values.data() + r * uint64_t(cols), size_t(cols));
    return values;
}

uint64_t Checkpoint::total_bytes() const {
    uint64_t total = 0;
    for (const TensorInfo &t : tensors_) total += t.nbytes;
    return total;
}

}  // namespace mst
