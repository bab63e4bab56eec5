// A session serves one call at a time. Two threads inside one session would race on its
// context, logits and statistics, so a call that finds another thread inside fails with
// MST_ERR_BUSY instead. The thread already inside may come back from an mst_generate
// callback to read the session (its logits, statistics, budget), not to change it.
#pragma once

#include <thread>

#include "api/handles.h"
#include "core/error.h"

namespace mst::api {

enum class SessionAccess { Read, Write };

class SessionEntry {
public:
    SessionEntry(const mst_session &session, SessionAccess access) : session_(const_cast<mst_session &>(session)) {
        const std::thread::id me = std::this_thread::get_id();
        std::thread::id expected{};
        if (session_.user.compare_exchange_strong(expected, me, std::memory_order_acquire)) {
            owner_ = true;
            return;
        }
        if (expected != me)
            fail(MST_ERR_BUSY, "the session is in use by another thread; one session serves one call at a time "
                 "(create a session per thread)");
        if (access == SessionAccess::Write)
            fail(MST_ERR_BUSY, "the session is inside a call on this thread (an mst_generate callback may read the "
                 "session, not change it)");
    }
    ~SessionEntry() {
        if (owner_) session_.user.store(std::thread::id{}, std::memory_order_release);
    }
    SessionEntry(const SessionEntry &) = delete;
    SessionEntry &operator=(const SessionEntry &) = delete;

private:
    mst_session &session_;
    bool owner_ = false;
};

}  // namespace mst::api
