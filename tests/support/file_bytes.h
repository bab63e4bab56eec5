// Whole files as byte strings, for tests that copy, damage or compare files.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mst::test {

// The bytes of `path`; a file that cannot be opened fails the test and reads as empty.
inline std::string read_file_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `bytes` to `path`, replacing it.
inline void write_file_bytes(const std::string &path, std::string_view bytes) {
    std::FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot create " + path);
    const size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    const bool ok = written == bytes.size() && std::fclose(f) == 0;
    if (!ok) throw std::runtime_error("cannot write " + path);
}

}  // namespace mst::test
