#include "core/aligned_buffer.h"

#include <cstdlib>
#include <utility>

#include "core/error.h"

namespace mst {

AlignedBuffer::AlignedBuffer(size_t bytes, const char *what) : size_(bytes) {
    if (bytes == 0) return;
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<uint8_t *>(std::aligned_alloc(kAlignment, rounded));
    if (!data_) fail(MST_ERR_OUT_OF_MEMORY, "cannot allocate {} bytes for {}", bytes, what);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer &AlignedBuffer::operator=(AlignedBuffer &&other) noexcept {
    if (this != &other) {
        std::free(data_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

}  // namespace mst
