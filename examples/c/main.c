/* A plain C99 program using moestream through its C header: load a model, generate a
 * few tokens greedily, print them and the statistics. Built against the installed
 * package (find_package(moestream) or pkg-config), which keeps the header valid C. */
#include <moestream.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_piece(int32_t token, const char *piece, size_t len, void *user_data) {
    int *count = (int *)user_data;
    (void)token;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    ++*count;
    return 0; /* keep going */
}

static int fail(const char *what, mst_status status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, mst_status_string(status), mst_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *prompt = argc > 2 ? argv[2] : "Hello";
    mst_model_params model_params;
    mst_session_params session_params;
    mst_generate_params gen;
    mst_model *model = NULL;
    mst_session *session = NULL;
    mst_session_stats stats;
    mst_stop_reason reason = MST_STOP_NONE;
    int32_t ids[256];
    size_t n_ids = 0;
    int produced = 0;
    mst_status status;

    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [PROMPT]\n", argv[0]);
        return 2;
    }
    printf("moestream %s (%u)\n", mst_version_string(), (unsigned)mst_version_number());

    mst_model_default_params(&model_params);
    model_params.expert_cache_bytes = 1u << 20;
    status = mst_model_load(argv[1], &model_params, &model);
    if (status != MST_OK) return fail("mst_model_load", status);

    status = mst_tokenize(model, prompt, strlen(prompt), ids, sizeof ids / sizeof ids[0], &n_ids);
    if (status != MST_OK) return fail("mst_tokenize", status);

    mst_session_default_params(&session_params);
    status = mst_session_create(model, &session_params, &session);
    if (status != MST_OK) return fail("mst_session_create", status);

    mst_generate_default_params(&gen);
    gen.max_tokens = 8;
    gen.sampler.temperature = 0.0f;
    gen.ignore_eos = 1;
    status = mst_generate(session, ids, n_ids, &gen, print_piece, &produced, &reason);
    if (status != MST_OK) return fail("mst_generate", status);

    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    status = mst_session_get_stats(session, &stats);
    if (status != MST_OK) return fail("mst_session_get_stats", status);
    printf("\ntokens: %d, stop reason %d, expert bytes read %llu\n", produced, (int)reason,
           (unsigned long long)stats.expert_bytes_read);

    mst_session_free(session);
    mst_model_free(model);
    return produced > 0 && reason == MST_STOP_MAX_TOKENS ? 0 : 1;
}
