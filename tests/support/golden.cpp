#include "golden.h"

#include <cmath>
#include <cstring>

#include "core/file_io.h"
#include "format/safetensors.h"

namespace mst::test {

Golden load_golden(const std::string &path) {
    const File file = File::open_read(path);
    const SafetensorsHeader header = read_safetensors_header(file);
    Golden g;
    for (const TensorInfo &t : header.tensors) {
        std::vector<uint8_t> bytes(t.nbytes);
        file.pread_exact(bytes.data(), bytes.size(), t.offset);
        if (t.dtype == DType::I32) {
            std::vector<int32_t> ids(t.nbytes / 4);
            std::memcpy(ids.data(), bytes.data(), t.nbytes);
            if (t.name == "input_ids") g.input_ids = ids;
            if (t.name == "greedy_ids") g.greedy_ids = ids;
        } else if (t.dtype == DType::F32 && t.shape.size() == 2) {
            std::vector<float> m(t.nbytes / 4);
            std::memcpy(m.data(), bytes.data(), t.nbytes);
            g.matrices[t.name] = std::move(m);
            g.vocab = t.shape[1];
        }
    }
    return g;
}

double relative_error(const float *a, const float *b, int64_t n) {
    double diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(a[i]) - double(b[i]);
        diff += d * d;
        norm += double(b[i]) * double(b[i]);
    }
    return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

double max_row_relative_error(const float *a, const float *b, int64_t rows, int64_t cols) {
    double worst = 0.0;
    for (int64_t r = 0; r < rows; ++r)
        worst = std::max(worst, relative_error(a + r * cols, b + r * cols, cols));
    return worst;
}


}  // namespace mst::test
