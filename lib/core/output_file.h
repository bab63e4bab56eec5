// A file being written under a temporary name and put in place only when complete, so
// that an interrupted writer never leaves a file under the final name: created next to
// the destination (same file system, so the final rename is atomic), removed again if
// the object goes away before commit().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mst {

class OutputFile {
public:
    // Creates "<destination>.tmp.XXXXXX" (a fresh unique name) and holds an exclusive
    // flock on it while writing, which the kernel drops when the process dies however it
    // dies: a temporary file nobody holds is a leftover (see clear_stale_temp_files).
    // Throws MST_ERR_IO naming the path and the system's reason.
    explicit OutputFile(std::string destination);
    ~OutputFile();
    OutputFile(const OutputFile &) = delete;
    OutputFile &operator=(const OutputFile &) = delete;

    const std::string &temp_path() const { return temp_path_; }
    const std::string &destination() const { return destination_; }
    // Bytes written so far (the end of the sequential writes).
    uint64_t position() const { return position_; }

    // Appends n bytes; throws MST_ERR_IO (path, offset, reason) when the write fails.
    void write(const void *data, size_t n);
    // Appends zero bytes up to the next multiple of `alignment`.
    void pad_to(uint64_t alignment);
    // Writes n bytes at `offset`, which must lie within what was written already.
    void write_at(const void *data, size_t n, uint64_t offset);

    // Flushes the data to disk and renames the file to the destination, which it
    // replaces when `replace` is set and which must not exist otherwise (MST_ERR_IO
    // "exists"); then flushes the directory so that the rename survives a crash.
    void commit(bool replace);

private:
    void write_all(const void *data, size_t n, uint64_t offset);

    std::string destination_;
    std::string temp_path_;
    int fd_ = -1;
    uint64_t position_ = 0;
    bool committed_ = false;
};

// Temporary files of earlier writes to `destination` ("<destination>.tmp.XXXXXX").
struct StaleTempFiles {
    std::vector<std::string> removed;  // left by a writer that died (SIGKILL, power loss): removed
    uint64_t removed_bytes = 0;
    std::vector<std::string> busy;     // still being written by a live process: left alone
    uint64_t busy_bytes = 0;
};
// Removes the temporary files of `destination` that no process holds (the OutputFile
// flock is free), so that an interrupted run's leftover neither fills the disk nor fails
// the next run's free-space check; reports those that another live writer still holds.
// Best effort: a directory that cannot be listed gives an empty result.
StaleTempFiles clear_stale_temp_files(const std::string &destination);

// Bytes available to an unprivileged writer on the file system holding `path` (a file
// or directory that exists). Throws MST_ERR_IO when it cannot be queried.
uint64_t free_disk_bytes(const std::string &path);

}  // namespace mst
