// Checkpoint over a packed file: the resident tensors form the table, file 0 is the
// packed file itself (the storage tier reads expert blobs from it too).
#include <array>

#include "core/error.h"
#include "format/checkpoint.h"
#include "format/gguf_file.h"
#include "format/packed_format.h"
#include "format/resident_mapping.h"

namespace mst {

std::unique_ptr<Checkpoint> Checkpoint::open_packed(const std::string &path, File file) {
    std::array<uint8_t, sizeof packed::kMagic> magic{};
    if (file.size() >= magic.size()) file.pread_exact(magic.data(), magic.size(), 0);
    // The file was read; its content is what is wrong.
    if (file.size() == 0)
        fail(MST_ERR_BAD_FORMAT,
             "'{}' is neither a checkpoint directory, a moestream packed file nor a GGUF file: it is empty",
             path);
    if (!has_packed_magic(magic))
        fail(MST_ERR_BAD_FORMAT,
             "'{}' is neither a checkpoint directory, a moestream packed file nor a GGUF file: its {} bytes "
             "do not start with the packed or the GGUF magic", path, file.size());
    auto contents = std::make_shared<PackedContents>(read_packed_contents(file));
    std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
    checkpoint->dir_ = path;
    checkpoint->tensors_ = contents->tensors;
    for (size_t i = 0; i < checkpoint->tensors_.size(); ++i) checkpoint->by_name_[checkpoint->tensors_[i].name] = i;
    checkpoint->paths_.push_back(path);
    checkpoint->files_.push_back(std::move(file));
    checkpoint->packed_ = std::move(contents);
    return checkpoint;
}

void Checkpoint::map_resident(bool verify) {
    if (resident_mapping_) return;
    if (gguf_) {
        const File &f = files_.at(0);
        if (gguf_->data_offset < f.size())
            resident_mapping_ = std::make_shared<const ResidentMapping>(
                f, gguf_->data_offset, f.size() - gguf_->data_offset, ResidentMapping::Unchecked{});
        return;
    }
    if (!packed_) return;
    const PackedSection &s = packed_->header.resident;
    resident_mapping_ = std::make_shared<const ResidentMapping>(files_.at(0), s.offset, s.bytes, verify, s.xxh64);
}

}  // namespace mst
