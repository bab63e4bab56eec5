// An owning, move-only byte buffer aligned for SIMD loads and O_DIRECT reads (4 KiB).
// Large buffers (expert weights, read staging) are mapped straight from the kernel rather
// than taken from malloc: an expert cache that keeps freeing and allocating megabyte
// buffers from several threads fragments malloc's arenas, and the process then holds
// gigabytes beyond its budget (measured: 6.2 GiB resident for 1.5 GiB of weights and a
// 2 GiB expert cache); a mapping goes back to the kernel the moment it is freed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mst {

class AlignedBuffer {
public:
    static constexpr size_t kAlignment = 4096;
    static constexpr size_t kMapThreshold = 256 * 1024;  // at or above: an anonymous mapping

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
    void release() noexcept;

    uint8_t *data_ = nullptr;
    size_t size_ = 0;
    size_t mapped_bytes_ = 0;  // > 0: data_ is a mapping of this length
};

}  // namespace mst
