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

std::string trained256_path() {
    const char *env = std::getenv("MST_TRAINED256_DIR");
    const std::string dir = env && *env ? env : MST_TRAINED256_DIR;
    std::error_code ec;
    return std::filesystem::exists(dir + "/config.json", ec) ? dir : std::string();
}

const char *trained256_recipe() {
    return "the trained 256-wide Qwen3-MoE is absent (set MST_TRAINED256_DIR, or configure with "
           "-DMST_TRAINED256_DIR=DIR); on a GPU: python3 tests/reference/train_moe.py --out DIR --arch qwen3_moe "
           "--hidden 256 --moe-inter 256 --heads 4 --head-dim 64 --kv-heads 2 --layers 4 --experts 16 --topk 4 "
           "--train-seconds 230 --deadline 400 --seed 19";
}

std::string make_temp_dir(const std::string &prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    char *made = mkdtemp(pattern.data());
    return made ? std::string(made) : std::string();
}

}  // namespace mst::test
