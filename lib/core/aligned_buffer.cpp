#include "core/aligned_buffer.h"

#include <sys/mman.h>

#include <cstdlib>
#include <utility>

#include "core/error.h"

namespace mst {

AlignedBuffer::AlignedBuffer(size_t bytes, const char *what) : size_(bytes) {
    if (bytes == 0) return;
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    if (rounded >= kMapThreshold) {
        // Mappings are page aligned, and pages are at least kAlignment bytes.
        void *p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) fail(MST_ERR_OUT_OF_MEMORY, "cannot map {} bytes for {}", bytes, what);
        data_ = static_cast<uint8_t *>(p);
        mapped_bytes_ = rounded;
        return;
    }
    data_ = static_cast<uint8_t *>(std::aligned_alloc(kAlignment, rounded));
    if (!data_) fail(MST_ERR_OUT_OF_MEMORY, "cannot allocate {} bytes for {}", bytes, what);
}

void AlignedBuffer::release() noexcept {
    if (mapped_bytes_) ::munmap(data_, mapped_bytes_);
    else std::free(data_);
    data_ = nullptr;
    size_ = mapped_bytes_ = 0;
}

AlignedBuffer::~AlignedBuffer() { release(); }

AlignedBuffer::AlignedBuffer(AlignedBuffer &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)) {}

AlignedBuffer &AlignedBuffer::operator=(AlignedBuffer &&other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    }
    return *this;
}

}  // namespace mst
