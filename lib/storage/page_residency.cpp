#include "storage/page_residency.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace mst {

namespace {

void sample_file(const std::string &path, size_t pages_wanted, PageResidency &out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        ::close(fd);
        return;
    }
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    const size_t size = size_t(st.st_size);
    // Mapping only reserves addresses: no page is read, so the sample does not change
    // what it measures.
    void *map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return;
    const size_t n_pages = (size + page - 1) / page;
    const size_t n = std::min(n_pages, std::max<size_t>(pages_wanted, 1));
    for (size_t i = 0; i < n; ++i) {
        const size_t p = n == 1 ? 0 : i * (n_pages - 1) / (n - 1);
        unsigned char in_core = 0;
        if (::mincore(static_cast<char *>(map) + p * page, page, &in_core) != 0) continue;
        ++out.sampled;
        out.resident += in_core & 1;
    }
    ::munmap(map, size);
}

}  // namespace

PageResidency sample_page_residency(const std::vector<std::string> &paths, size_t pages_per_file) {
    PageResidency r;
    for (const std::string &path : paths) sample_file(path, pages_per_file, r);
    return r;
}

}  // namespace mst
