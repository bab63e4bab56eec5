// Fault injection for tests: the "fault" storage tier is the pread tier whose read
// system call consults a FaultPlan, so short reads, EINTR, EIO and slow reads reach the
// same retry and error paths a failing disk would.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace mst {

struct Fault {
    enum class Kind { ShortRead, Interrupt, IoError, Slow };
    Kind kind = Kind::IoError;
    // Fires on reads whose starting offset lies in [offset_begin, offset_end).
    uint64_t offset_begin = 0;
    uint64_t offset_end = UINT64_MAX;
    int times = 1;         // how many reads it hits; < 0: every matching read
    int delay_ms = 0;      // Slow: sleep this long before reading
};

class FaultPlan {
public:
    void add(const Fault &fault);
    void clear();
    // Reads hit so far, by kind order (ShortRead, Interrupt, IoError, Slow).
    std::vector<uint64_t> hits() const;
    // The read system call the "fault" tier uses: pread, unless a fault fires.
    ssize_t pread(int fd, void *buf, size_t count, off_t offset);

private:
    mutable std::mutex mutex_;
    std::vector<Fault> faults_;
    std::vector<uint64_t> hits_ = std::vector<uint64_t>(4, 0);
};

// The plan the next "fault" tier opened will use (process-wide; tests only). A tier
// keeps the plan it was opened with, so a test can add and clear faults while it runs.
void set_fault_plan(std::shared_ptr<FaultPlan> plan);
std::shared_ptr<FaultPlan> current_fault_plan();

}  // namespace mst
