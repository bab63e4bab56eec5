// The loop of the parser fuzz tests (tests/unit/test_safetensors.cpp,
// test_model_config.cpp): mutated inputs must be either accepted or refused with an
// mst::Error, never anything else, and both must happen.
#pragma once

#include <gtest/gtest.h>

#include <exception>

#include "core/error.h"

namespace mst::test {

// Calls attempt(i) for i < n. An attempt either returns (its mutated input was accepted and
// it checked what was accepted) or throws mst::Error (refused); any other exception fails
// the test, and a fatal failure inside an attempt stops the loop. Then expects both
// outcomes to have occurred, so the mutations neither all break nor all miss the parser.
template <typename Attempt>
void expect_accepted_or_mst_error(int n, Attempt &&attempt) {
    int accepted = 0, refused = 0;
    for (int i = 0; i < n; ++i) {
        try {
            attempt(i);
            if (::testing::Test::HasFatalFailure()) return;
            ++accepted;
        } catch (const mst::Error &) {
            ++refused;
        } catch (const std::exception &e) {
            FAIL() << "iteration " << i << ": non-mst exception: " << e.what();
        } catch (...) {
            FAIL() << "iteration " << i << ": non-std exception";
        }
    }
    EXPECT_GT(accepted, 0);
    EXPECT_GT(refused, 0);
}

}  // namespace mst::test
