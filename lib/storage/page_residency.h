// How much of a set of files the page cache holds, found by sampling pages with mincore:
// the "auto" storage tier reads through the page cache when it already holds the experts
// and past it (O_DIRECT) when they must come from the device anyway.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mst {

struct PageResidency {
    uint64_t sampled = 0;   // pages looked at
    uint64_t resident = 0;  // of those, in the page cache
    double fraction() const { return sampled ? double(resident) / double(sampled) : 0.0; }
};

// Up to `pages_per_file` pages of each file, spread evenly over it (one page each, so
// that the sample costs microseconds whatever the file's size). A file that cannot be
// opened or mapped counts as not sampled.
PageResidency sample_page_residency(const std::vector<std::string> &paths, size_t pages_per_file = 1024);

}  // namespace mst
