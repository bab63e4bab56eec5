// A GGUF file held in memory through the reader and every typed metadata lookup: what
// parses must describe tensors inside the image, on the alignment, and a lookup either
// answers or throws mst::Error. Then what moestream makes of the metadata: the summary
// `info` prints, the model config and tokenizer of each architecture, and the split keys
// of a first shard (named as one, in a folder that does not exist, so that the other
// shards' reads fail with MST_ERR_IO): each answers or throws mst::Error.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "format/gguf_file.h"
#include "format/gguf_split.h"
#include "format/gguf_summary.h"
#include "model/gguf_model_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try {
        const mst::GgufFile f = mst::parse_gguf(std::span<const uint8_t>(data, size), "fuzz");
        if (f.alignment == 0 || f.data_offset % f.alignment != 0) __builtin_trap();
        for (const mst::GgufTensor &t : f.tensors) {
            if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
            if ((t.offset - f.data_offset) % f.alignment != 0) __builtin_trap();
            if (f.find_tensor(t.name) != &t) __builtin_trap();
        }
        for (const auto &[key, value] : f.metadata) {
            if (f.find(key) != &value) __builtin_trap();
            try { (void)f.find_uint(key); } catch (const mst::Error &) {}
            try { (void)f.find_float(key); } catch (const mst::Error &) {}
            try { (void)f.find_string(key); } catch (const mst::Error &) {}
            try { (void)f.find_bool(key); } catch (const mst::Error &) {}
            try { (void)f.find_int_array(key); } catch (const mst::Error &) {}
            try { (void)f.require_string_array(key); } catch (const mst::Error &) {}
        }
        try { (void)mst::summarize_gguf(f); } catch (const mst::Error &) {}
        try { (void)mst::read_gguf_model_config(f); } catch (const mst::Error &) {}
        try { (void)mst::read_gguf_tokenizer(f); } catch (const mst::Error &) {}
        mst::GgufFile first = f;
        first.path = "/nonexistent/fuzz-00001-of-00002.gguf";
        try { (void)mst::open_gguf_shards(first); } catch (const mst::Error &) {}
    } catch (const mst::Error &) {
    }
    return 0;
}
