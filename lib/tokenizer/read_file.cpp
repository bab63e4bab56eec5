#include "tokenizer/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace mst {

std::string read_tokenizer_file(const std::string &path) {
    struct Descriptor {
        int fd;
        ~Descriptor() {
            if (fd >= 0) ::close(fd);
        }
    } file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) fail(MST_ERR_IO, "{}: cannot open: {}", path, std::strerror(errno));
    std::string content;
    char buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::read(file.fd, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(MST_ERR_IO, "{}: read failed: {}", path, std::strerror(errno));
        }
        content.append(buffer, static_cast<size_t>(n));
    }
    return content;
}

}  // namespace mst
