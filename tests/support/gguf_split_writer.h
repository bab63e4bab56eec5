// Test tools that re-lay GGUF files. split_gguf cuts a GGUF file into shards as llama.cpp's gguf-split does: shard i (from 0)
// named <prefix>-%05d-of-%05d.gguf (numbered from 1), each with split.no, split.count
// and split.tensors.count, the first with every metadata key of the source, the tensors
// dealt out in file order. Metadata values are copied by re-encoding what mst::read_gguf
// parsed, so a shard's bytes follow the specification, not the reader.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "gguf_builder.h"

namespace mst::test {

// Returns the shard paths. Throws std::runtime_error or mst::Error on failure.
std::vector<std::string> split_gguf(const std::string &source, const std::string &prefix, int n_shards);

// Copies `source` to `destination` with its tensors and the metadata keys `keep` accepts
// (all when empty), calling `add` on the builder after them so that it can add keys
// (tests of metadata paths).
void rewrite_gguf(const std::string &source, const std::string &destination,
                  const std::function<void(GgufBuilder &)> &add,
                  const std::function<bool(const std::string &)> &keep = {});

}  // namespace mst::test
