// `moestream info` on a GGUF file (or the first shard of a split one): the file's own
// summary (format/gguf_summary.h), its types and bytes by role and by tensor name, printed
// before the model is loaded, so that a GGUF moestream cannot run still shows
// what it holds before the error that says why.
#pragma once

#include <string>

namespace mst::cli {

// Prints the summary when `path` is a GGUF file; returns false (printing nothing) otherwise.
bool print_gguf_info(const std::string &path);

}  // namespace mst::cli
