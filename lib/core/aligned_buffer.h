// An owning, move-only byte buffer aligned for SIMD loads and O_DIRECT reads (4 KiB).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mst {

class AlignedBuffer {
public:
    static constexpr size_t kAlignment = 4096;

    AlignedBuffer() = default;
    // Throws mst::Error(MST_ERR_OUT_OF_MEMORY) naming `what` when the allocation fails.
    AlignedBuffer(size_t bytes, const char *what);
    ~AlignedBuffer();
    AlignedBuffer(AlignedBuffer &&other) noexcept;
    AlignedBuffer &operator=(AlignedBuffer &&other) noexcept;
    AlignedBuffer(const AlignedBuffer &) = delete;
    AlignedBuffer &operator=(const AlignedBuffer &) = delete;

    uint8_t *data() { return data_; }
    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }

private:
    uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace mst
