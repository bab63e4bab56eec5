#include "storage/page_cache_advice.h"

#include <fcntl.h>

namespace mst {

void advise_page_cache(int fd, uint64_t offset, uint64_t length, AccessHint hint) {
    int advice = POSIX_FADV_NORMAL;
    switch (hint) {
        case AccessHint::Random: advice = POSIX_FADV_RANDOM; break;
        case AccessHint::WillNeed: advice = POSIX_FADV_WILLNEED; break;
        case AccessHint::DontNeed: advice = POSIX_FADV_DONTNEED; break;
    }
    (void)posix_fadvise(fd, off_t(offset), off_t(length), advice);
}

}  // namespace mst
