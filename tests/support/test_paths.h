// Where the tests find their data: the project's own (tests/data) and the optional
// independent fixtures in ../shared (skipped when that folder is absent).
#pragma once

#include <string>

namespace mst::test {

// tests/data/<rel>
std::string data_path(const std::string &rel);
// ../shared/<rel>, or "" when ../shared/<rel> does not exist.
std::string shared_path(const std::string &rel);
// The trained Qwen3-MoE with 256-wide rows (whole K-quant super-blocks), too large to
// commit: $MST_TRAINED256_DIR, else the CMake variable of the same name (default
// ../trained256/qwen3_moe_trained_256 beside the source tree); "" when that folder has no
// config.json. trained256_recipe() says how to make it, for the tests' skip messages.
std::string trained256_path();
const char *trained256_recipe();
// A fresh empty directory under the system temp dir, removed by the caller if wanted.
std::string make_temp_dir(const std::string &prefix);

}  // namespace mst::test
