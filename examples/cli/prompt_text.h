// Where `run` gets its prompt: -p TEXT as typed (escapes only with --escape, as llama.cpp's
// -e does), or -f FILE read as it is.
#pragma once

#include <string>

#include "cli_args.h"

namespace mst::cli {

// `text` with \n, \t, \r, \\, \", \' and \xHH turned into the characters they stand for;
// any other backslash is kept as typed.
std::string process_escapes(const std::string &text);

// The prompt the options --prompt / --file / --escape give; UsageError when neither or
// both are given, or the file cannot be read.
std::string prompt_from(const Args &args);

}  // namespace mst::cli
