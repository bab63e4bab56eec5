#include "core/output_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace mst {
namespace {

constexpr size_t kMaxWriteChunk = size_t(1) << 30;

std::string parent_dir(const std::string &path) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

// The process's umask, read without changing it (umask(2) can only be read by setting
// it, which would race with files other threads create meanwhile).
mode_t current_umask() {
    std::FILE *f = std::fopen("/proc/self/status", "r");
    mode_t mask = 022;
    if (!f) return mask;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
        unsigned value = 0;
        if (std::sscanf(line, "Umask: %o", &value) == 1) {
            mask = mode_t(value);
            break;
        }
    }
    std::fclose(f);
    return mask;
}

void fsync_dir(const std::string &dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // best effort: some file systems refuse to open directories
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

OutputFile::OutputFile(std::string destination) : destination_(std::move(destination)) {
    std::string name = destination_ + ".tmp.XXXXXX";
    fd_ = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd_ < 0) {
        const int err = errno;
        fail(MST_ERR_IO, "cannot create a temporary file next to '{}': {}", destination_, errno_text(err));
    }
    temp_path_ = name;
    // Marks the file as in use for clear_stale_temp_files; the fresh file is ours alone.
    ::flock(fd_, LOCK_EX | LOCK_NB);
    // mkostemp creates the file private (0600); the result is an ordinary file.
    ::fchmod(fd_, 0666 & ~current_umask());
}

OutputFile::~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void OutputFile::write_all(const void *data, size_t n, uint64_t offset) {
    const auto *p = static_cast<const unsigned char *>(data);
    size_t done = 0;
    while (done < n) {
        const ssize_t got = ::pwrite(fd_, p + done, std::min(n - done, kMaxWriteChunk), off_t(offset + done));
        if (got < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail(MST_ERR_IO, "{}: write of {} bytes at offset {} failed: {}", temp_path_, n, offset, errno_text(err));
        }
        if (got == 0) fail(MST_ERR_IO, "{}: write of {} bytes at offset {} made no progress", temp_path_, n, offset);
        done += size_t(got);
    }
}

void OutputFile::write(const void *data, size_t n) {
    write_all(data, n, position_);
    position_ += n;
}

void OutputFile::pad_to(uint64_t alignment) {
    const uint64_t target = (position_ + alignment - 1) / alignment * alignment;
    const std::vector<unsigned char> zeros(size_t(std::min<uint64_t>(target - position_, kMaxWriteChunk)), 0);
    while (position_ < target) write(zeros.data(), size_t(std::min<uint64_t>(zeros.size(), target - position_)));
}

void OutputFile::write_at(const void *data, size_t n, uint64_t offset) {
    if (offset > position_ || n > position_ - offset)
        fail(MST_ERR_INTERNAL, "{}: write at [{}, +{}) past the written end {}", temp_path_, offset, n, position_);
    write_all(data, n, offset);
}

void OutputFile::commit(bool replace) {
    if (::fsync(fd_) != 0) {
        const int err = errno;
        fail(MST_ERR_IO, "{}: cannot flush to disk: {}", temp_path_, errno_text(err));
    }
    ::close(fd_);
    fd_ = -1;
    if (replace) {
        if (::rename(temp_path_.c_str(), destination_.c_str()) != 0) {
            const int err = errno;
            fail(MST_ERR_IO, "cannot rename '{}' to '{}': {}", temp_path_, destination_, errno_text(err));
        }
    } else {
        // A hard link fails if the destination appeared meanwhile, where rename would
        // silently replace it.
        if (::link(temp_path_.c_str(), destination_.c_str()) == 0) {
            ::unlink(temp_path_.c_str());
        } else {
            const int err = errno;
            std::error_code ec;
            if (err == EEXIST || std::filesystem::exists(destination_, ec))
                fail(MST_ERR_IO, "'{}' exists; pass --force (mst_convert_params.force) to replace it", destination_);
            // File systems without hard links: check, then rename.
            if (::rename(temp_path_.c_str(), destination_.c_str()) != 0) {
                const int rename_err = errno;
                fail(MST_ERR_IO, "cannot rename '{}' to '{}': {}", temp_path_, destination_, errno_text(rename_err));
            }
        }
    }
    committed_ = true;
    fsync_dir(parent_dir(destination_));
}

StaleTempFiles clear_stale_temp_files(const std::string &destination) {
    namespace fs = std::filesystem;
    StaleTempFiles out;
    const std::string prefix = fs::path(destination).filename().string() + ".tmp.";
    std::error_code ec;
    fs::directory_iterator it(parent_dir(destination), ec);
    if (ec) return out;
    for (const fs::directory_entry &entry : it) {
        const std::string name = entry.path().filename().string();
        // mkostemp's six characters after the prefix, nothing else.
        if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
        if (!entry.is_regular_file(ec)) continue;
        const std::string path = entry.path().string();
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        struct stat st{};
        const uint64_t bytes = ::fstat(fd, &st) == 0 ? uint64_t(st.st_size) : 0;
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            // Unlinked while locked, so a writer starting now cannot be holding it.
            if (::unlink(path.c_str()) == 0) {
                out.removed.push_back(path);
                out.removed_bytes += bytes;
            }
        } else {
            out.busy.push_back(path);
            out.busy_bytes += bytes;
        }
        ::close(fd);
    }
    return out;
}

uint64_t free_disk_bytes(const std::string &path) {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) != 0) {
        const int err = errno;
        fail(MST_ERR_IO, "cannot query the free space of '{}': {}", path, errno_text(err));
    }
    return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

}  // namespace mst
