// Little-endian binary encoding for moestream's own file sections (the packed format's
// header, metadata and index): a writer that appends to a string, and a reader that
// checks every read against the bytes left, so that a damaged or hostile file ends in
// an mst::Error naming the file, the section and the field, never a read out of bounds.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mst {

class ByteWriter {
public:
    void u8(uint8_t v) { out_.push_back(char(v)); }
    void u16(uint16_t v) { put(v, 2); }
    void u32(uint32_t v) { put(v, 4); }
    void u64(uint64_t v) { put(v, 8); }
    void i64(int64_t v) { put(uint64_t(v), 8); }
    void bytes(std::string_view b) { out_.append(b); }
    const std::string &str() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void put(uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
    }
    std::string out_;
};

class ByteReader {
public:
    // `what` names the data in errors, e.g. "model.mst: index".
    ByteReader(std::span<const uint8_t> data, std::string what) : data_(data), what_(std::move(what)) {}

    uint8_t u8(const char *field) { return uint8_t(get(1, field)); }
    uint16_t u16(const char *field) { return uint16_t(get(2, field)); }
    uint32_t u32(const char *field) { return uint32_t(get(4, field)); }
    uint64_t u64(const char *field) { return get(8, field); }
    int64_t i64(const char *field) { return int64_t(get(8, field)); }
    // n bytes, viewed in place.
    std::string_view bytes(uint64_t n, const char *field);

    uint64_t position() const { return pos_; }
    uint64_t remaining() const { return data_.size() - pos_; }
    const std::string &what() const { return what_; }
    // MST_ERR_BAD_FORMAT "<what>: <message> (at byte <position>)".
    [[noreturn]] void fail_at(const std::string &message) const;

private:
    uint64_t get(int n, const char *field);
    void need(uint64_t n, const char *field) const;

    std::span<const uint8_t> data_;
    std::string what_;
    uint64_t pos_ = 0;
};

}  // namespace mst
