// A packed file's resident section used in place: mapped read-only from the file (the
// page cache holds the bytes) instead of copied into buffers of the process's own, so a
// load costs one pass over the section (the checksum) rather than a copy, page faults on
// fresh memory and the checksum. The checksum is verified over the mapped bytes before
// the mapping is handed out, so no tensor is used before its bytes were checked.
//
// The bytes are the file's: a file modified on disk while a model maps it changes the
// weights under the model (as with llama.cpp's mmap), and one truncated under it ends the
// process with SIGBUS when a vanished page is touched. Replacing a file by renaming a new
// one over it (what `moestream convert` does) is safe: the mapping keeps the old inode.
#pragma once

#include <cstdint>
#include <string>

#include "core/file_io.h"

namespace mst {

class ResidentMapping {
public:
    // Maps bytes [offset, offset + bytes) of `file` and brings them into memory. With
    // `verify`, checks their xxHash64 against `xxh64`: MST_ERR_CHECKSUM naming the file,
    // offset and both hashes on a mismatch. MST_ERR_IO naming the file when it cannot be
    // mapped. The range must lie inside the file (the packed header's parser checked it).
    ResidentMapping(const File &file, uint64_t offset, uint64_t bytes, bool verify, uint64_t xxh64);
    // Maps bytes [offset, offset + bytes) of a file that carries no checksum (GGUF) without
    // reading them: its data section holds the experts beside the resident tensors, so
    // only the pages of the tensors handed out through use() are brought in, each when it
    // is. MST_ERR_IO naming the file when it cannot be mapped.
    struct Unchecked {};
    ResidentMapping(const File &file, uint64_t offset, uint64_t bytes, Unchecked);
    ~ResidentMapping();
    ResidentMapping(const ResidentMapping &) = delete;
    ResidentMapping &operator=(const ResidentMapping &) = delete;

    // The mapped bytes at file offset `offset`, `nbytes` long; nullptr when they are not
    // all inside the mapped range.
    const uint8_t *find(uint64_t offset, uint64_t nbytes) const;
    // As find, with the range's pages brought into memory first (one call instead of a
    // fault per page during the first token) when the whole mapping was not at construction.
    const uint8_t *use(uint64_t offset, uint64_t nbytes) const;

private:
    void map(const File &file, uint64_t bytes);

    bool populated_ = false;      // every page was brought in at construction
    void *base_ = nullptr;        // page-aligned start of the mapping
    uint64_t map_bytes_ = 0;      // length of the mapping
    uint64_t base_offset_ = 0;    // file offset of base_
    uint64_t begin_ = 0, end_ = 0;// file offsets of the section
};

}  // namespace mst
