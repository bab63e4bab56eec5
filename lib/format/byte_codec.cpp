#include "format/byte_codec.h"

#include "core/error.h"

namespace mst {

void ByteReader::need(uint64_t n, const char *field) const {
    if (n > remaining())
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: {} needs {} bytes at byte {}, but only {} remain", what_, field, n,
             pos_, remaining());
}

uint64_t ByteReader::get(int n, const char *field) {
    need(uint64_t(n), field);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | data_[pos_ + size_t(i)];
    pos_ += uint64_t(n);
    return v;
}

std::string_view ByteReader::bytes(uint64_t n, const char *field) {
    need(n, field);
    const std::string_view view(reinterpret_cast<const char *>(data_.data() + pos_), size_t(n));
    pos_ += n;
    return view;
}

void ByteReader::fail_at(const std::string &message) const {
    fail(MST_ERR_BAD_FORMAT, "{}: {} (at byte {})", what_, message, pos_);
}

}  // namespace mst
