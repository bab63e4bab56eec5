// Messages carry names read from files (tensor names, dtypes, model types), which a
// damaged or hostile file can fill with NUL bytes (that would cut a C string short) or
// terminal control sequences. Every mst::Error message and log line passes through this.
#pragma once

#include <string>
#include <string_view>

namespace mst {

// `text` with each control byte other than newline and tab (and DEL) written as \xNN.
std::string printable(std::string_view text);

}  // namespace mst
