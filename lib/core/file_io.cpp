#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"

namespace mst {

namespace {

// Linux transfers at most about 2 GiB per read call; asking for less keeps every
// request well inside what the kernel and off_t arithmetic handle.
constexpr size_t kMaxReadChunk = size_t(1) << 30;

}  // namespace

std::string errno_text(int errnum) {
    char buffer[256];
    // The GNU variant returns a pointer that may or may not be `buffer`.
    const char *text = strerror_r(errnum, buffer, sizeof buffer);
    return text ? std::string(text) : std::string("errno ") + std::to_string(errnum);
}

File::~File() {
    if (fd_ >= 0) ::close(fd_);
}

File::File(File &&other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(std::exchange(other.size_, 0)), path_(std::move(other.path_)) {}

File &File::operator=(File &&other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        size_ = std::exchange(other.size_, 0);
        path_ = std::move(other.path_);
    }
    return *this;
}

File File::open_read(const std::string &path, int extra_flags) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | extra_flags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        const int err = errno;
        // open(2) answers EINVAL for O_DIRECT on a file system without direct I/O.
        if (err == EINVAL && (extra_flags & O_DIRECT))
            fail(MST_ERR_UNSUPPORTED, "cannot open '{}' with O_DIRECT: its file system does not support direct I/O ({})",
                 path, errno_text(err));
        fail(MST_ERR_IO, "cannot open '{}': {}", path, errno_text(err));
    }
    File file;
    file.fd_ = fd;
    file.path_ = path;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        fail(MST_ERR_IO, "cannot stat '{}': {}", path, errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) fail(MST_ERR_IO, "'{}' is not a regular file", path);
    file.size_ = uint64_t(st.st_size);
    return file;
}

void File::pread_exact(void *dst, size_t n, uint64_t offset) const {
    if (fd_ < 0) fail(MST_ERR_INVALID_ARGUMENT, "read of {} bytes from a file that is not open", n);
    const uint64_t max_offset = uint64_t(std::numeric_limits<off_t>::max());
    // A range past what off_t can address cannot be in the file; say so rather than
    // letting the offset wrap.
    if (offset > max_offset || n > max_offset - offset) {
        fail(MST_ERR_BAD_FORMAT, "{}: truncated: wanted {} bytes at offset {}, file has {}", path_, n, offset,
             size_);
    }
    auto *out = static_cast<unsigned char *>(dst);
    size_t done = 0;
    while (done < n) {
        const size_t chunk = std::min(n - done, kMaxReadChunk);
        const ssize_t got = ::pread(fd_, out + done, chunk, off_t(offset + done));
        if (got < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail(MST_ERR_IO, "{}: read of {} bytes at offset {} failed: {}", path_, n, offset, errno_text(err));
        }
        if (got == 0) {
            // The file may have changed since it was opened; report its size now.
            struct stat st;
            const uint64_t now = ::fstat(fd_, &st) == 0 ? uint64_t(st.st_size) : size_;
            fail(MST_ERR_BAD_FORMAT, "{}: truncated: wanted {} bytes at offset {}, file has {}", path_, n, offset,
                 now);
        }
        done += size_t(got);
    }
}

std::string read_text_file(const std::string &path, size_t max_bytes) {
    const File file = File::open_read(path);
    if (file.size() > max_bytes) {
        fail(MST_ERR_BAD_FORMAT, "{}: file is {} bytes, more than the {} allowed", path, file.size(), max_bytes);
    }
    std::string text(size_t(file.size()), '\0');
    file.pread_exact(text.data(), text.size(), 0);
    return text;
}

}  // namespace mst
