// Read-only file access with errors that name the file: an RAII descriptor and
// positioned reads that either deliver every byte asked for or throw mst::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mst {

// The text of an errno value (thread-safe, unlike strerror).
std::string errno_text(int errnum);

// An open, read-only regular file. Move-only; the descriptor closes with the object.
// pread_exact is const and keeps no file position, so one File may be read from
// several threads at once.
class File {
public:
    File() = default;
    ~File();
    File(File &&other) noexcept;
    File &operator=(File &&other) noexcept;
    File(const File &) = delete;
    File &operator=(const File &) = delete;

    // Opens `path` for reading, with `extra_flags` (e.g. O_DIRECT) added to O_RDONLY.
    // Throws MST_ERR_IO naming the path and the system's reason when it cannot be opened
    // or is not a regular file, and MST_ERR_UNSUPPORTED when the file system refuses
    // O_DIRECT.
    static File open_read(const std::string &path, int extra_flags = 0);

    bool is_open() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // Size in bytes when the file was opened.
    uint64_t size() const { return size_; }
    const std::string &path() const { return path_; }

    // Reads exactly n bytes at `offset` into dst, retrying short reads and EINTR.
    // Throws MST_ERR_BAD_FORMAT "<path>: truncated: ..." when the file ends first and
    // MST_ERR_IO (path, offset, length, reason) when the read fails.
    void pread_exact(void *dst, size_t n, uint64_t offset) const;

private:
    int fd_ = -1;
    uint64_t size_ = 0;
    std::string path_;
};

// The whole content of a text file. Throws MST_ERR_IO when it cannot be read and
// MST_ERR_BAD_FORMAT when it is larger than max_bytes (the caller's bound on an
// allocation driven by a file it does not trust).
std::string read_text_file(const std::string &path, size_t max_bytes);

}  // namespace mst
