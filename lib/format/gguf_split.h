// A model cut by llama.cpp's gguf-split: name-00001-of-00003.gguf, ... Every shard is a
// GGUF file of its own carrying split.no (0-based), split.count and split.tensors.count;
// the first also carries the model's metadata. The shards' tensors together make the model.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/file_io.h"
#include "format/gguf_file.h"

namespace mst {

// The path of shard `no` (0-based) of `count` beside `first`, which must be named
// <prefix>-00001-of-<count>.gguf; MST_ERR_BAD_FORMAT naming it when it is not.
std::string gguf_shard_path(const std::string &first, uint64_t no, uint64_t count);

// For a first shard (split.count > 1): opens the other shards beside it, checks them, and
// appends their tensors to `first` (GgufTensor::file = the shard's number). Returns the
// shards' paths and open files, in order, from shard 1. For a file that is not split
// (no split.count, or 1), returns nothing. Errors: the path of a shard other than the first
// (MST_ERR_INVALID_ARGUMENT, naming the first); a missing shard (MST_ERR_IO naming it); a
// shard whose split.no / split.count disagree, a tensor in two shards, or a tensor total
// other than split.tensors.count (MST_ERR_BAD_FORMAT naming the shard).
std::vector<std::pair<std::string, File>> open_gguf_shards(GgufFile &first);

}  // namespace mst
