// A Hugging Face checkpoint directory: one or more safetensors files whose headers
// are read once into a table of every tensor. The files stay open so that tensors
// (and, through file(), experts) can be read by offset for the checkpoint's life.
// A moestream packed file (.mst, format/packed_format.h) opens through the same class:
// its resident tensors, under their Hugging Face names, make the table (file 0), and
// packed() gives its metadata and expert index.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_io.h"
#include "format/safetensors.h"

namespace mst {

struct PackedContents;
struct GgufFile;
class ResidentMapping;

class Checkpoint {
public:
    virtual ~Checkpoint() = default;

    // Name of the shard index a sharded checkpoint carries beside its shards.
    static constexpr const char *kIndexName = "model.safetensors.index.json";
    // Largest index file read; DeepSeek-V3's index (about 91k tensors) is under 10 MiB.
    static constexpr size_t kMaxIndexBytes = size_t(64) << 20;

    // Opens `dir`, which holds model.safetensors, or model.safetensors.index.json
    // ("weight_map": tensor -> shard file), or otherwise every *.safetensors in it
    // (taken in sorted order); the first of these present wins, as in transformers.
    // With an index, every tensor of every shard it names is in the table (files()
    // in sorted shard-name order). Errors: missing dir -> MST_ERR_IO; no safetensors ->
    // MST_ERR_BAD_FORMAT; an index naming a missing shard -> MST_ERR_IO naming it; a
    // tensor in the index that its shard lacks, or one tensor in two shards ->
    // MST_ERR_BAD_FORMAT; plus every error of read_safetensors_header.
    // `dir` may also be a packed file, recognised by its magic: then the header, metadata
    // and index are read and their checksums verified (see read_packed_contents); a
    // regular file without the magic (empty or not) is MST_ERR_BAD_FORMAT, and a FIFO,
    // device or socket MST_ERR_IO naming what it is.
    static std::unique_ptr<Checkpoint> open(const std::string &dir);

    // A GGUF file (llama.cpp's format, recognised by its magic) opens as well: its tensors
    // under Hugging Face names and its stacked experts cut into per-expert views
    // (format/gguf_names.h); gguf() gives its metadata.
    // The directory, or the packed (or GGUF) file's path.
    const std::string &dir() const { return dir_; }
    // The packed file's contents (metadata, expert index); nullptr for a directory.
    const PackedContents *packed() const { return packed_.get(); }
    // The GGUF file's header and metadata; nullptr unless the checkpoint is a GGUF file.
    const GgufFile *gguf() const { return gguf_.get(); }
    // For a packed file, map its resident section (format/resident_mapping.h) and, with
    // `verify`, check its xxHash64 (MST_ERR_CHECKSUM naming the file) before anything can
    // use it; from then on resident_mapping() serves its tensors in place, and read()
    // copies them from it. For a GGUF file (no checksums), map the first file's data
    // section unread: mapped() brings in each tensor's pages as it is handed out, as
    // llama.cpp's mmap does. Nothing to do for a directory.
    void map_resident(bool verify);
    // The bytes of tensor `t` in place in the resident mapping, their pages brought in,
    // when the mapping holds them as read() would return them (and aligned for the
    // kernels); nullptr otherwise, and the caller copies them with read().
    virtual const uint8_t *mapped(const TensorInfo &t) const;
    // The mapping map_resident made; nullptr before it, or for a directory.
    // Shared: whoever holds views into it (ResidentWeights) keeps it alive.
    const std::shared_ptr<const ResidentMapping> &resident_mapping() const { return resident_mapping_; }
    // Shard paths, indexed by TensorInfo::file_index.
    const std::vector<std::string> &files() const { return paths_; }
    // The open shard `index`; MST_ERR_INVALID_ARGUMENT when out of range.
    const File &file(uint32_t index) const;
    // Every tensor, sorted by name.
    const std::vector<TensorInfo> &tensors() const { return tensors_; }

    // The tensor called `name`, or nullptr. The pointer lives as long as the checkpoint.
    virtual const TensorInfo *find(std::string_view name) const;
    // As find, but MST_ERR_BAD_FORMAT "tensor 'x' not found in checkpoint 'dir'".
    const TensorInfo &require(std::string_view name) const;
    // As require, and MST_ERR_BAD_FORMAT "tensor 'x' has shape [a, b], expected [c, d]"
    // when the shape differs.
    virtual const TensorInfo &require(std::string_view name, std::initializer_list<int64_t> shape) const;
    // Every tensor name, sorted.
    std::vector<std::string> names() const;
    // Called with every tensor found (find, require) or read from now on: the converter
    // learns from it which tensors an architecture uses.
    void set_lookup_observer(std::function<void(const TensorInfo &)> observer) { observer_ = std::move(observer); }

    // Reads the tensor's bytes (t.nbytes of them) into dst.
    virtual void read(const TensorInfo &t, void *dst) const;
    // Reads an F32/F16/BF16 tensor converted to float32; MST_ERR_UNSUPPORTED naming
    // the tensor for other dtypes.
    virtual std::vector<float> read_f32(const TensorInfo &t) const;
    // Sum of every tensor's bytes.
    uint64_t total_bytes() const;

protected:
    // Lookups and reads are virtual for one reason: `moestream synth` builds an
    // architecture over a checkpoint that invents each tensor the architecture asks for
    // (convert/shape_discovery.h), which is how it learns every architecture's tensors
    // and expert parts without a list of its own.
    Checkpoint() = default;

private:
    void add_file(const std::string &path);
    static std::unique_ptr<Checkpoint> open_packed(const std::string &path, File file);
    static std::unique_ptr<Checkpoint> open_gguf(const std::string &path, File file);

    std::string dir_;
    std::vector<std::string> paths_;
    std::vector<File> files_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> by_name_;  // name -> index in tensors_
    std::shared_ptr<const PackedContents> packed_;
    std::shared_ptr<const GgufFile> gguf_;
    std::shared_ptr<const ResidentMapping> resident_mapping_;
    std::function<void(const TensorInfo &)> observer_;
};

}  // namespace mst
