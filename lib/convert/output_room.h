// The check convert and synth make before writing a byte: leftovers of interrupted runs
// cleared, then room for the whole file.
#pragma once

#include <cstdint>
#include <string>

namespace mst {

// Removes the temporary files an earlier, killed write to `destination` left (logged as
// a warning, naming each), then throws MST_ERR_IO unless the destination's file system
// has `needed` bytes free, naming both sizes and any temporary file of `destination`
// that another live process is still writing.
void ensure_room_for(const std::string &destination, uint64_t needed);

}  // namespace mst
