// mst_tokenizer_kind: which kind of tokenizer file the model came with (for `moestream info`).
#include "api/handles.h"
#include "tokenizer/tokenizer.h"

using namespace mst;

extern "C" {

const char *mst_tokenizer_kind(const mst_model *model) {
    if (!model || !model->impl || !model->impl->tokenizer) return nullptr;
    return tokenizer_kind_name(model->impl->tokenizer->kind());
}

}  // extern "C"
