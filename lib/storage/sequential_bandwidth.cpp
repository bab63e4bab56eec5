#include "storage/sequential_bandwidth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "core/aligned_buffer.h"
#include "core/error.h"

namespace mst {

bool evict_from_page_cache(const std::vector<std::string> &paths) {
    bool all = true;
    for (const std::string &path : paths) {
        const int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) {
            all = false;
            continue;
        }
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
    return all;
}

SequentialBandwidth measure_sequential_bandwidth(const std::vector<std::string> &paths, uint64_t max_bytes,
                                                 uint64_t chunk, int threads) {
    struct Range {
        int fd;
        uint64_t offset, length;
    };
    SequentialBandwidth result;
    result.direct = true;
    std::vector<int> fds;
    std::vector<Range> ranges;
    uint64_t planned = 0;
    for (const std::string &path : paths) {
        if (planned >= max_bytes) break;
        int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
        if (fd < 0 && errno == EINVAL) {  // e.g. tmpfs: fall back to cold buffered reads
            result.direct = false;
            fd = ::open(path.c_str(), O_RDONLY);
            if (fd >= 0) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        }
        if (fd < 0) fail(MST_ERR_IO, "cannot open '{}' to measure its read bandwidth", path);
        fds.push_back(fd);
        struct stat st {};
        ::fstat(fd, &st);
        const uint64_t usable = uint64_t(st.st_size) / chunk * chunk;  // whole, aligned chunks only
        for (uint64_t off = 0; off < usable && planned < max_bytes; off += chunk, planned += chunk)
            ranges.push_back(Range{fd, off, chunk});
    }
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> done{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < std::max(threads, 1); ++t)
        workers.emplace_back([&] {
            AlignedBuffer buffer(chunk, "bandwidth probe");
            for (size_t i = next++; i < ranges.size(); i = next++) {
                const ssize_t got = ::pread(ranges[i].fd, buffer.data(), ranges[i].length, off_t(ranges[i].offset));
                if (got > 0) done += uint64_t(got);
            }
        });
    for (auto &w : workers) w.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int fd : fds) ::close(fd);
    result.bytes_read = done;
    result.bytes_per_second = seconds > 0 ? double(done) / seconds : 0.0;
    return result;
}

}  // namespace mst
