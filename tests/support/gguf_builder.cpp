#include "gguf_builder.h"

#include <fstream>
#include <stdexcept>

namespace mst::test {

void GgufBuilder::add_tensor(std::string_view name, uint32_t type, std::vector<uint64_t> ne, std::string bytes) {
    if (!ggml_type_info(type)) throw std::invalid_argument("GgufBuilder: unknown ggml type");
    if (GgufWriter::add_tensor(name, type, ne) != bytes.size())
        throw std::invalid_argument("GgufBuilder: tensor " + std::string(name) + " has the wrong byte count");
    data_.push_back(std::move(bytes));
}

std::string GgufBuilder::build() const {
    std::string out = header();
    for (const std::string &bytes : data_) {
        out += bytes;
        out.append(padding(bytes.size()), '\0');
    }
    return out;
}

void GgufBuilder::write(const std::string &path) const {
    const std::string bytes = build();
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f) throw std::runtime_error("GgufBuilder: cannot write " + path);
}

}  // namespace mst::test
