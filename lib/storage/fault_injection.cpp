#include "storage/fault_injection.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace mst {

void FaultPlan::add(const Fault &fault) {
    std::lock_guard lock(mutex_);
    faults_.push_back(fault);
}

void FaultPlan::clear() {
    std::lock_guard lock(mutex_);
    faults_.clear();
}

std::vector<uint64_t> FaultPlan::hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
}

ssize_t FaultPlan::pread(int fd, void *buf, size_t count, off_t offset) {
    Fault fired;
    bool any = false;
    {
        std::lock_guard lock(mutex_);
        for (Fault &f : faults_) {
            if (f.times == 0 || uint64_t(offset) < f.offset_begin || uint64_t(offset) >= f.offset_end) continue;
            if (f.times > 0) --f.times;
            fired = f;
            any = true;
            ++hits_[size_t(f.kind)];
            break;
        }
    }
    if (!any) return ::pread(fd, buf, count, offset);
    switch (fired.kind) {
        case Fault::Kind::ShortRead:
            return ::pread(fd, buf, count > 1 ? count / 2 : count, offset);
        case Fault::Kind::Interrupt:
            errno = EINTR;
            return -1;
        case Fault::Kind::IoError:
            errno = EIO;
            return -1;
        case Fault::Kind::Slow:
            std::this_thread::sleep_for(std::chrono::milliseconds(fired.delay_ms));
            return ::pread(fd, buf, count, offset);
    }
    return ::pread(fd, buf, count, offset);
}

namespace {
std::mutex plan_mutex;
std::shared_ptr<FaultPlan> plan;
}  // namespace

void set_fault_plan(std::shared_ptr<FaultPlan> new_plan) {
    std::lock_guard lock(plan_mutex);
    plan = std::move(new_plan);
}

std::shared_ptr<FaultPlan> current_fault_plan() {
    std::lock_guard lock(plan_mutex);
    return plan;
}

}  // namespace mst
