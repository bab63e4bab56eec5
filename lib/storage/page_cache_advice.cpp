#include "storage/page_cache_advice.h"

#include <fcntl.h>

#include <algorithm>

namespace mst {

void advise_page_cache(int fd, uint64_t offset, uint64_t length, AccessHint hint) {
    int advice = POSIX_FADV_NORMAL;
    switch (hint) {
        case AccessHint::Random: advice = POSIX_FADV_RANDOM; break;
        case AccessHint::WillNeed: advice = POSIX_FADV_WILLNEED; break;
        case AccessHint::DontNeed: advice = POSIX_FADV_DONTNEED; break;
    }
    if (hint == AccessHint::WillNeed && length > kWillNeedChunk) {
        for (uint64_t done = 0; done < length; done += kWillNeedChunk)
            (void)posix_fadvise(fd, off_t(offset + done), off_t(std::min(kWillNeedChunk, length - done)), advice);
        return;
    }
    (void)posix_fadvise(fd, off_t(offset), off_t(length), advice);
}

}  // namespace mst
