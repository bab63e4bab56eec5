// What the C handles hold.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "model/loaded_model.h"
#include "session/session.h"
#include "session/step_batcher.h"

struct mst_model {
    // Shared with every session of the model, so that mst_model_free before the last
    // mst_session_free only gives up the caller's handle.
    std::shared_ptr<mst::LoadedModel> impl;
};

struct mst_session {
    std::shared_ptr<mst::LoadedModel> model;  // declared first: outlives impl, which refers to it
    std::unique_ptr<mst::Session> impl;
    // The thread inside a call on this session (default id: none); see session_entry.h.
    std::atomic<std::thread::id> user{};
};

struct mst_batcher {
    std::shared_ptr<mst::LoadedModel> model;  // declared first: outlives impl, which refers to it
    std::unique_ptr<mst::StepBatcher> impl;
};
