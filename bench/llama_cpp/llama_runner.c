// llama_runner: drives llama.cpp (the libllama fetched by bench/llama_cpp/fetch.sh) on a GGUF
// file with given token ids and reports what moestream's `bench` reports, so that the two
// engines can be compared on the same bytes: load time, prompt processing speed (a first
// pass, then a second on a cleared KV cache), time to first token, decode speed; and
// optionally the logits of every prompt position, for the agreement test.
//
// Built by bench/llama_cpp/CMakeLists.txt only when the fetched headers and library exist;
// the moestream library never links llama.cpp. Options: see usage() below or --help.
#define _GNU_SOURCE  // dladdr
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static const char *const kUsage =
    "usage: llama_runner -m FILE.gguf [options]\n"
    "Runs llama.cpp on FILE.gguf with given token ids; prints one 'key: value' line per figure.\n"
    "  -m FILE               the GGUF model (required)\n"
    "  -t N                  threads for prompt and decode, 1..1024 (default 2)\n"
    "  --ids I,J,...         the prompt's token ids\n"
    "  --ids-file FILE       the prompt's token ids, separated by white space or commas\n"
    "  --synthetic-prompt N  a prompt of N ids, id i = (i * 7919 + 13) mod n_vocab: the prompt\n"
    "                        `moestream bench --prompt-tokens N` feeds (default when no ids: 8)\n"
    "  -n N                  decode steps timed after the prompt, 0..1000000 (default 16)\n"
    "  --decode MODE         how the decoded tokens are chosen: sample (temperature 1, as\n"
    "                        moestream bench does, default), greedy (argmax), or forced\n"
    "                        (continue the synthetic ids: the same tokens in every engine)\n"
    "  --seed S              seed of `sample` (default 1)\n"
    "  --passes N            prompt passes, 1..100 (default 2): the first is timed as the first\n"
    "                        pass (and gives the time to first token), the others each on a\n"
    "                        cleared KV cache; decoding follows the last one\n"
    "  -b N                  prompt batch (llama.cpp's n_batch = n_ubatch), 1..65536 (default 512)\n"
    "  -c N                  context size (default: prompt + decode steps + 1)\n"
    "  -ngl N                layers offloaded to a GPU (default 0: CPU only)\n"
    "  --kv-type T           the KV cache's type, f16 (llama.cpp's default) or f32: f32 takes\n"
    "                        the cache's rounding out of a comparison of logits\n"
    "  --no-mmap             read the weights into memory instead of mapping the file\n"
    "  --logits FILE         write the logits of every prompt position of the first pass:\n"
    "                        int32 n_positions, int32 n_vocab, then n_positions rows of\n"
    "                        n_vocab float32, little-endian\n"
    "  --backends DIR        load ggml's backends (the CPU variants) from DIR (default: the\n"
    "                        folder of libggml, as ggml_backend_load_all finds them)\n"
    "  -v                    let llama.cpp log (default: errors only)\n"
    "Timings: load_s (llama_model_load_from_file + context), prompt_first_tok_s,\n"
    "prompt_second_tok_s (last pass), ttft_s (first pass + choosing the first token),\n"
    "decode_tok_s (n steps, each one llama_decode of one token and choosing the next).\n";

typedef struct {
    const char *model, *ids, *ids_file, *logits, *backends, *decode, *kv_type;
    int threads, synthetic, n_gen, passes, batch, ctx, ngl, mmap, verbose;
    uint64_t seed;
} Options;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *fmt, const char *what) {
    fprintf(stderr, "llama_runner: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    return 2;
}

// A whole number in [lo, hi] or an error naming the option.
static int parse_int(const char *opt, const char *text, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    const long v = text ? strtol(text, &end, 10) : 0;
    if (!text || *text == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "llama_runner: %s needs a whole number in %ld..%ld, got '%s'\n", opt, lo, hi,
                text ? text : "(nothing)");
        return 0;
    }
    *out = (int)v;
    return 1;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

// Token ids from a list separated by commas or white space; NULL (with a message) on a
// word that is not an id in [0, n_vocab).
static int32_t *parse_ids(const char *text, int32_t n_vocab, int *count) {
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    const char *p = text;
    while (ids) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') ++p;
        if (*p == '\0') break;
        char *end = NULL;
        errno = 0;
        const long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 0 || v >= n_vocab ||
            (*end != '\0' && *end != ',' && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')) {
            fprintf(stderr, "llama_runner: token id '%.20s' is not a number in 0..%d\n", p, n_vocab - 1);
            free(ids);
            return NULL;
        }
        if (n == cap) {
            int32_t *grown = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!grown) free(ids);
            ids = grown;
            if (!ids) break;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (!ids) fprintf(stderr, "llama_runner: out of memory reading token ids\n");
    if (ids && n == 0) {
        fprintf(stderr, "llama_runner: the token id list is empty\n");
        free(ids);
        return NULL;
    }
    *count = (int)n;
    return ids;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "llama_runner: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

static int32_t synthetic_id(int64_t i, int32_t n_vocab) { return (int32_t)(((uint64_t)i * 7919u + 13u) % (uint64_t)n_vocab); }

static int32_t argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i)
        if (logits[i] > logits[best]) best = i;
    return best;
}

// A draw from softmax(logits) (temperature 1) with a splitmix64 stream.
static int32_t sample(const float *logits, int32_t n, uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    const float top = logits[argmax(logits, n)];
    double total = 0;
    for (int32_t i = 0; i < n; ++i) total += exp((double)(logits[i] - top));
    double acc = 0;
    for (int32_t i = 0; i < n; ++i) {
        acc += exp((double)(logits[i] - top)) / total;
        if (u < acc) return i;
    }
    return n - 1;
}

// One prompt pass in batches of `batch`; every position's logits are requested when
// `all_logits`, else the last one's only. Returns 0 on success.
static int eval_prompt(struct llama_context *ctx, const int32_t *ids, int n, int batch, int all_logits,
                       struct llama_batch *b) {
    for (int start = 0; start < n; start += batch) {
        const int len = n - start < batch ? n - start : batch;
        b->n_tokens = len;
        for (int i = 0; i < len; ++i) {
            b->token[i] = ids[start + i];
            b->pos[i] = start + i;
            b->n_seq_id[i] = 1;
            b->seq_id[i][0] = 0;
            b->logits[i] = (int8_t)(all_logits || start + i == n - 1);
        }
        const int32_t rc = llama_decode(ctx, *b);
        if (rc != 0) {
            fprintf(stderr, "llama_runner: llama_decode failed with %d on the prompt at position %d\n", rc, start);
            return 1;
        }
    }
    return 0;
}

static int write_logits(const char *path, struct llama_context *ctx, int n, int32_t n_vocab) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "llama_runner: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    const int32_t head[2] = {n, n_vocab};
    int ok = fwrite(head, sizeof head, 1, f) == 1;
    for (int i = 0; ok && i < n; ++i) {
        const float *row = llama_get_logits_ith(ctx, i);
        ok = row && fwrite(row, sizeof *row, (size_t)n_vocab, f) == (size_t)n_vocab;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "llama_runner: writing the logits to %s failed\n", path);
    return !ok;
}

// ggml_backend_load_all looks beside the executable and in the working directory; the CPU
// variants (libggml-cpu-haswell.so, ...) sit beside libggml, so that folder is the default.
static void load_backends(const char *dir) {
    Dl_info info;
    char path[PATH_MAX];
    if (!dir && dladdr((void *)ggml_backend_load_all_from_path, &info) && info.dli_fname &&
        strlen(info.dli_fname) < sizeof path) {
        strcpy(path, info.dli_fname);
        dir = dirname(path);
    }
    if (dir) ggml_backend_load_all_from_path(dir);
    else ggml_backend_load_all();
}

static int parse_options(int argc, char **argv, Options *o) {
    *o = (Options){.threads = 2, .n_gen = 16, .passes = 2, .batch = 512, .mmap = 1, .seed = 1, .decode = "sample",
                   .kv_type = "f16"};
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, takes = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(kUsage, stdout);
            exit(0);
        } else if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-t")) ok = parse_int(a, v, 1, 1024, &o->threads);
        else if (!strcmp(a, "--ids")) o->ids = v;
        else if (!strcmp(a, "--ids-file")) o->ids_file = v;
        else if (!strcmp(a, "--synthetic-prompt")) ok = parse_int(a, v, 1, 1000000, &o->synthetic);
        else if (!strcmp(a, "-n")) ok = parse_int(a, v, 0, 1000000, &o->n_gen);
        else if (!strcmp(a, "--decode")) o->decode = v;
        else if (!strcmp(a, "--passes")) ok = parse_int(a, v, 1, 100, &o->passes);
        else if (!strcmp(a, "-b")) ok = parse_int(a, v, 1, 65536, &o->batch);
        else if (!strcmp(a, "-c")) ok = parse_int(a, v, 1, 10000000, &o->ctx);
        else if (!strcmp(a, "-ngl")) ok = parse_int(a, v, 0, 100000, &o->ngl);
        else if (!strcmp(a, "--logits")) o->logits = v;
        else if (!strcmp(a, "--kv-type")) o->kv_type = v;
        else if (!strcmp(a, "--backends")) o->backends = v;
        else if (!strcmp(a, "--seed")) {
            int s = 0;
            ok = parse_int(a, v, 0, INT_MAX, &s);
            o->seed = (uint64_t)s;
        } else if (!strcmp(a, "--no-mmap")) o->mmap = 0, takes = 0;
        else if (!strcmp(a, "-v")) o->verbose = 1, takes = 0;
        else return fail("unknown option '%s' (see --help)", a);
        if (takes && !v) return fail("%s needs a value (see --help)", a);
        if (!ok) return 2;
        i += takes;
    }
    if (!o->model) return fail("%s", "-m FILE.gguf is required (see --help)");
    if (strcmp(o->decode, "sample") && strcmp(o->decode, "greedy") && strcmp(o->decode, "forced"))
        return fail("--decode is sample, greedy or forced, not '%s'", o->decode);
    if (strcmp(o->kv_type, "f16") && strcmp(o->kv_type, "f32"))
        return fail("--kv-type is f16 or f32, not '%s'", o->kv_type);
    if ((o->ids != NULL) + (o->ids_file != NULL) + (o->synthetic != 0) > 1)
        return fail("%s", "give one of --ids, --ids-file and --synthetic-prompt");
    if (!o->ids && !o->ids_file && !o->synthetic) o->synthetic = 8;
    return 0;
}

int main(int argc, char **argv) {
    Options o;
    const int bad = parse_options(argc, argv, &o);
    if (bad) return bad;
    if (!o.verbose) llama_log_set(quiet_log, NULL);
    load_backends(o.backends);
    llama_backend_init();

    const double t_load = now_s();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = o.ngl;
    mp.load_mode = o.mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    struct llama_model *model = llama_model_load_from_file(o.model, mp);
    if (!model) {
        fprintf(stderr, "llama_runner: llama.cpp could not load %s (run with -v for its log)\n", o.model);
        return 1;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    int n_prompt = o.synthetic;
    int32_t *ids = NULL;
    if (o.synthetic) {
        ids = malloc((size_t)n_prompt * sizeof *ids);
        for (int i = 0; ids && i < n_prompt; ++i) ids[i] = synthetic_id(i, n_vocab);
    } else {
        char *text = o.ids ? strdup(o.ids) : read_text(o.ids_file);
        ids = text ? parse_ids(text, n_vocab, &n_prompt) : NULL;
        free(text);
    }
    if (!ids) {
        llama_model_free(model);
        return 1;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = o.ctx ? (uint32_t)o.ctx : (uint32_t)(n_prompt + o.n_gen + 1);
    cp.n_batch = cp.n_ubatch = (uint32_t)o.batch;
    cp.n_threads = cp.n_threads_batch = o.threads;
    cp.type_k = cp.type_v = strcmp(o.kv_type, "f32") ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.no_perf = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    const double load_s = now_s() - t_load;
    int rc = 1;
    struct llama_batch b = llama_batch_init(o.batch, 0, 1);
    if (!ctx) {
        fprintf(stderr, "llama_runner: llama_init_from_model failed (context of %u tokens)\n", cp.n_ctx);
        goto done;
    }
    if ((int64_t)n_prompt + o.n_gen + 1 > (int64_t)llama_n_ctx(ctx)) {
        fprintf(stderr, "llama_runner: %d prompt tokens and %d decode steps do not fit the context of %u\n", n_prompt,
                o.n_gen, llama_n_ctx(ctx));
        goto done;
    }
    printf("model: %s\nthreads: %d\nn_vocab: %d\nprompt_tokens: %d\nload_s: %.4f\n", o.model, o.threads, n_vocab,
           n_prompt, load_s);

    int32_t next = 0;
    for (int pass = 0; pass < o.passes; ++pass) {
        llama_memory_clear(llama_get_memory(ctx), 1);
        const double t0 = now_s();
        if (eval_prompt(ctx, ids, n_prompt, o.batch, pass == 0 && o.logits != NULL, &b)) goto done;
        const double prompt_s = now_s() - t0;
        next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
        if (pass == 0) {
            printf("prompt_first_tok_s: %.3f\nttft_s: %.4f\n", n_prompt / prompt_s, now_s() - t0);
            if (o.logits && write_logits(o.logits, ctx, n_prompt, n_vocab)) goto done;
        } else if (pass == o.passes - 1) {
            printf("prompt_second_tok_s: %.3f\n", n_prompt / prompt_s);
        }
    }

    uint64_t rng = o.seed;
    const int forced = !strcmp(o.decode, "forced"), greedy = !strcmp(o.decode, "greedy");
    if (!greedy) next = forced ? synthetic_id(n_prompt, n_vocab) : sample(llama_get_logits_ith(ctx, -1), n_vocab, &rng);
    const double t_dec = now_s();
    for (int i = 0; i < o.n_gen; ++i) {
        b.n_tokens = 1;
        b.token[0] = next;
        b.pos[0] = n_prompt + i;
        b.n_seq_id[0] = 1;
        b.seq_id[0][0] = 0;
        b.logits[0] = 1;
        const int32_t r = llama_decode(ctx, b);
        if (r != 0) {
            fprintf(stderr, "llama_runner: llama_decode failed with %d at decode step %d\n", r, i);
            goto done;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        next = forced ? synthetic_id(n_prompt + i + 1, n_vocab) : greedy ? argmax(logits, n_vocab) : sample(logits, n_vocab, &rng);
    }
    if (o.n_gen > 0) printf("decode_tokens: %d\ndecode_tok_s: %.3f\n", o.n_gen, o.n_gen / (now_s() - t_dec));
    rc = 0;

done:
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    free(ids);
    llama_backend_free();
    return rc;
}
