// Where the tests find their data: the project's own (tests/data) and the optional
// independent fixtures in ../shared (skipped when that folder is absent).
#pragma once

#include <string>

namespace mst::test {

// tests/data/<rel>
std::string data_path(const std::string &rel);
// ../shared/<rel>, or "" when ../shared/<rel> does not exist.
std::string shared_path(const std::string &rel);
// A fresh empty directory under the system temp dir, removed by the caller if wanted.
std::string make_temp_dir(const std::string &prefix);

}  // namespace mst::test
