// Reading a tokenizer file whole; shared by the tokenizer.json and tiktoken loaders.
#pragma once

#include <string>

namespace mst {

// The file's bytes; MST_ERR_IO naming path and the system's reason when it cannot be read.
std::string read_tokenizer_file(const std::string &path);

}  // namespace mst
