#include "prompt_text.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace mst::cli {

std::string process_escapes(const std::string &text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\' || i + 1 == text.size()) {
            out += text[i];
            continue;
        }
        const char next = text[i + 1];
        switch (next) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case '\'': out += '\''; break;
        case 'x':
            if (i + 3 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 2])) &&
                std::isxdigit(static_cast<unsigned char>(text[i + 3]))) {
                out += char(std::stoi(text.substr(i + 2, 2), nullptr, 16));
                i += 2;
                break;
            }
            [[fallthrough]];
        default:
            out += '\\';
            out += next;
        }
        ++i;
    }
    return out;
}

std::string prompt_from(const Args &args) {
    const auto text = args.get("prompt");
    const auto file = args.get("file");
    if (text && file) throw UsageError("give the prompt with -p TEXT or -f FILE, not both");
    if (!text && !file) throw UsageError("missing the prompt: -p TEXT or -f FILE");
    if (text) return args.flag("escape") ? process_escapes(*text) : *text;
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw UsageError("cannot read the prompt file '" + *file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace mst::cli
