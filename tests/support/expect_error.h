// Test helper: asserts that a call throws mst::Error with a given status and that its
// message names what it should (a path, a tensor, a field).
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.h"

namespace mst::test {

template <typename F>
void expect_error(F &&call, mst_status code, std::initializer_list<std::string_view> message_parts) {
    try {
        call();
        ADD_FAILURE() << "expected an mst::Error with status " << int(code) << ", but the call succeeded";
    } catch (const mst::Error &e) {
        const std::string what = e.what();
        EXPECT_EQ(e.code(), code) << what;
        for (std::string_view part : message_parts) {
            EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' is missing from: " << what;
        }
    }
}

}  // namespace mst::test
