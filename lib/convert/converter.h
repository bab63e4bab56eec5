// The converter: a Hugging Face checkpoint directory in, one packed file (.mst) out.
#pragma once

#include <string>

#include "convert/convert_options.h"

namespace mst {

// Converts `source` (a checkpoint directory whose architecture moestream supports) into
// the packed file `destination`. The file is written under a temporary name next to
// the destination and renamed into place only when complete. Throws mst::Error:
// MST_ERR_IO when the destination exists without options.force, when the disk lacks
// the space the file may need (checked before writing, naming both sizes) or when a
// read or write fails; MST_ERR_INVALID_ARGUMENT for a bad option or a source that is
// not a directory; MST_ERR_CANCELLED when `progress` returns false; and whatever
// loading the source throws.
ConvertReport convert_checkpoint(const std::string &source, const std::string &destination,
                                 const ConvertOptions &options, const ConvertProgressFn &progress = {});

}  // namespace mst
