// What the C handles hold.
#pragma once

#include <memory>
#include <string>

#include "model/loaded_model.h"
#include "session/session.h"

struct mst_model {
    std::unique_ptr<mst::LoadedModel> impl;
};

struct mst_session {
    std::unique_ptr<mst::Session> impl;
    mst_model *model = nullptr;
};
