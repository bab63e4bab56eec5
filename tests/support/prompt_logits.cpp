#include "prompt_logits.h"

namespace mst::test {

std::vector<float> prompt_logits(const std::string &model_path, const std::vector<int32_t> &ids, int32_t n_threads) {
    mst_model_params p = mst::model_params();
    p.backend = "cpu";
    p.n_threads = n_threads;
    return prompt_logits(mst::ModelHandle(model_path, p), ids, uint32_t(ids.size() + 1));
}

std::vector<float> prompt_logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids, uint32_t n_ctx) {
    mst_session_params sp = mst::session_params();
    if (n_ctx > 0) sp.n_ctx = n_ctx;
    return prompt_logits(model, ids, sp);
}

std::vector<float> prompt_logits(const mst::ModelHandle &model, const std::vector<int32_t> &ids,
                                 mst_session_params params) {
    params.all_logits = 1;
    mst::SessionHandle session(model, params);
    session.eval(ids);
    return session_all_logits(session);
}

std::vector<float> session_all_logits(const mst::SessionHandle &session) {
    const float *logits = nullptr;
    size_t rows = 0, vocab = 0;
    mst::check(mst_session_all_logits(session.get(), &logits, &rows, &vocab));
    return std::vector<float>(logits, logits + rows * vocab);
}

}  // namespace mst::test
