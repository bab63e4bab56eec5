// The device's own sequential read bandwidth, measured on the files a model lives in:
// large O_DIRECT reads (bypassing the page cache), 16 in flight: a queue that deep is
// what NVMe and virtio disks need to reach their rated bandwidth (measured here: 4 in
// flight gave 290 MB/s where 16 gave 770 MB/s). It is the
// ceiling that streaming experts is judged against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mst {

struct SequentialBandwidth {
    double bytes_per_second = 0.0;
    uint64_t bytes_read = 0;
    bool direct = false;  // false: the filesystem refused O_DIRECT; buffered reads of
                          // pages dropped from the cache first (posix_fadvise DONTNEED)
};

// Read up to `max_bytes` of `paths` in `chunk`-byte reads, `threads` at a time.
SequentialBandwidth measure_sequential_bandwidth(const std::vector<std::string> &paths, uint64_t max_bytes,
                                                 uint64_t chunk = 8ull << 20, int threads = 16);

// Ask the OS to drop the files' pages from the page cache (no root needed). Returns
// false if any file could not be opened.
bool evict_from_page_cache(const std::vector<std::string> &paths);

}  // namespace mst
