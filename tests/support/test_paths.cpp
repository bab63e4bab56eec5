#include "test_paths.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace mst::test {

std::string data_path(const std::string &rel) { return std::string(MST_TEST_DATA_DIR) + "/" + rel; }

std::string shared_path(const std::string &rel) {
    std::string path = std::string(MST_SHARED_DIR) + "/" + rel;
    std::error_code ec;
    return std::filesystem::exists(path, ec) ? path : std::string();
}

std::string make_temp_dir(const std::string &prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    char *made = mkdtemp(pattern.data());
    return made ? std::string(made) : std::string();
}

}  // namespace mst::test
