/*
 * moestream: run Mixture-of-Experts language models whose weights do not fit in memory.
 *
 * This header is the library's one public contract. It is plain C (C99 and later).
 *
 * Conventions
 * - Objects are opaque handles with create/free pairs; every *_free accepts NULL.
 * - Every fallible call returns an mst_status. On failure, mst_last_error() returns a
 *   thread-local message naming the file, tensor or expert involved. The values of
 *   mst_status never change between versions.
 * - Params structs begin with struct_size, are filled by *_default_params() and only
 *   grow at the end, so a program built against an older header keeps working.
 * - Strings passed in are borrowed for the duration of the call only.
 * - The library never aborts or exits on bad input, I/O errors or allocation failure.
 */
#ifndef MOESTREAM_H
#define MOESTREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MST_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MST_API __attribute__((visibility("default")))
#else
#define MST_API
#endif

/* ---- version ------------------------------------------------------------------ */

#define MST_VERSION_MAJOR 0
#define MST_VERSION_MINOR 1
#define MST_VERSION_PATCH 0
#define MST_VERSION_NUMBER (MST_VERSION_MAJOR * 10000 + MST_VERSION_MINOR * 100 + MST_VERSION_PATCH)

/* The version of the library actually linked: MAJOR * 10000 + MINOR * 100 + PATCH. */
MST_API uint32_t mst_version_number(void);
/* The same as "MAJOR.MINOR.PATCH"; a static string. */
MST_API const char *mst_version_string(void);

/* ---- status and errors --------------------------------------------------------- */

typedef enum mst_status {
    MST_OK = 0,
    MST_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, an out-of-range value, a bad option */
    MST_ERR_IO = 2,               /* open/read/stat failed; the message has path and errno */
    MST_ERR_BAD_FORMAT = 3,       /* a file is malformed: truncated, bad JSON, bad offsets */
    MST_ERR_UNSUPPORTED = 4,      /* valid but not supported: a dtype, a model_type */
    MST_ERR_OUT_OF_MEMORY = 5,    /* an allocation failed */
    MST_ERR_CHECKSUM = 6,         /* stored data does not match its checksum */
    MST_ERR_BACKEND = 7,          /* the compute backend failed or is unavailable */
    MST_ERR_BUFFER_TOO_SMALL = 8, /* an output buffer is too small; the needed size is reported */
    MST_ERR_CONTEXT_FULL = 9,     /* evaluating would exceed the session's n_ctx */
    MST_ERR_CANCELLED = 10,       /* a callback asked to stop */
    MST_ERR_INTERNAL = 11,        /* a bug in moestream; please report the message */
    MST_ERR_BUSY = 12             /* the session is in a call on another thread (or, for a call
                                     that changes it, inside an mst_generate callback) */
} mst_status;

/* A static, human-readable name for a status ("invalid argument", ...). */
MST_API const char *mst_status_string(mst_status status);

/* The message of the last failure on this thread, or "" if none. Valid until the next
 * failing call on the same thread. */
MST_API const char *mst_last_error(void);

/* ---- logging --------------------------------------------------------------------- */

typedef enum mst_log_level {
    MST_LOG_ERROR = 0,
    MST_LOG_WARN = 1,
    MST_LOG_INFO = 2,
    MST_LOG_DEBUG = 3
} mst_log_level;

typedef void (*mst_log_callback)(mst_log_level level, const char *message, void *user_data);

/* Route library log lines to `callback` (NULL restores the default: WARN and ERROR to
 * stderr). Messages above `max_level` are dropped. Process-wide; thread-safe. */
MST_API void mst_log_set(mst_log_callback callback, mst_log_level max_level, void *user_data);

/* ---- model ----------------------------------------------------------------------- */

typedef struct mst_model mst_model;

/* mst_model_params.expert_cache_bytes: let the library size the expert cache. */
#define MST_EXPERT_CACHE_AUTO UINT64_MAX

typedef struct mst_model_params {
    uint32_t struct_size;        /* sizeof(mst_model_params), set by mst_model_default_params */
    const char *backend;         /* "auto" (default): Vulkan when a GPU is usable, else the CPU
                                    (the choice is logged; a Vulkan CPU implementation such as
                                    lavapipe is never chosen by "auto") | "cpu" | "vulkan": fails
                                    with MST_ERR_BACKEND naming why when no device is usable or
                                    the library was built without Vulkan (README "Backends") */
    const char *storage;         /* "auto" (default) | "mmap" | "pread" | "direct" | "uring":
                                    how expert bytes are read (README "Storage tiers"). "auto"
                                    samples how much of the experts' bytes the page cache holds:
                                    mostly held, mmap (used in place); else direct where the file system takes
                                    O_DIRECT, else pread (the choice and why are logged) */
    uint64_t expert_cache_bytes; /* byte budget of the expert cache. Default MST_EXPERT_CACHE_AUTO:
                                    the memory the process may use when loading starts (the lower
                                    of MemAvailable and its cgroup's memory limit less its resident
                                    size) minus the resident weights minus a margin of an eighth
                                    (at least 256 MiB), never below one token's experts
                                    (mst_model_info.expert_bytes_per_token) nor above all of them;
                                    1 GiB under those bounds where the memory cannot be read. The
                                    result is logged and in mst_model_info.expert_cache_bytes. A
                                    budget below one token's experts is logged as a warning: every
                                    token then reads its experts again. Experts that a single
                                    layer step needs are always held, so the real peak is
                                    max(budget, one step's working set). */
    int32_t experts_per_token;   /* 0 = the model's own top-k; else 1..n_experts */
    int32_t n_threads;           /* compute threads; 0 = all cores. More than the CPUs this
                                    process may run on is clamped to them, with a warning
                                    logged; negative is MST_ERR_INVALID_ARGUMENT */
    int32_t n_io_threads;        /* expert read threads; 0 = default (4) */
    /* Fields below were added after the first layout (48 bytes, its last 4 of padding):
     * a caller built against that one passes struct_size 48, whose padding must not be
     * taken for a field. */
    int32_t reserved0;           /* unused; keep 0 */
    /* Storage tier options (README "Storage tiers"). "Buffered tiers" are pread and
     * uring without storage_direct_io: they read through the OS page cache. */
    int32_t storage_queue_depth; /* uring: reads in flight (ring entries), 1..4096; 0 = default (64) */
    uint32_t storage_direct_io;  /* nonzero: read with O_DIRECT, bypassing the page cache; pread
                                    then works as the "direct" tier, uring reads O_DIRECT too.
                                    Default 0 */
    uint32_t storage_fadvise_random; /* nonzero (default 1): buffered tiers advise POSIX_FADV_RANDOM
                                    at open and mmap advises MADV_RANDOM, so that no read-ahead
                                    pulls neighbouring experts in */
    int32_t storage_willneed;    /* 1: mmap advises MADV_WILLNEED on each expert as it is mapped
                                    and an I/O thread waits for its pages (MADV_POPULATE_READ),
                                    so compute does not fault; pread advises POSIX_FADV_WILLNEED on every read of a batch
                                    before its threads start. 0: neither. -1 (default): the tier's
                                    own choice, on for mmap and off for pread */
    uint32_t storage_drop_after_read; /* nonzero: buffered tiers advise POSIX_FADV_DONTNEED after each
                                    read and mmap drops released experts from the page cache, so
                                    the expert cache is the only cache. Default 0 */
    const char *cache_policy;    /* expert cache eviction: "learned" (default; a model fitted
                                    offline scores each expert's reuse from online features and
                                    a miss is cached only if it outscores its victim: the best on
                                    trained routing) | "lrfu-admit" (lrfu with that admission) |
                                    "lrfu" (frequency-weighted recency) | "lru-2touch" /
                                    "lrfu-2touch" (cache a miss only at its second miss within the
                                    last capacity misses) | "lru" | "lfu" (aging) | "arc" (adaptive)
                                    | "none" (only the OS page cache) */
    int32_t prefetch;            /* N > 0: predict the experts of the next N MoE layers by applying
                                    their routers to the current hidden state and read them while
                                    this layer computes (decode only); 1 is the next layer only,
                                    deeper guesses are less precise but give the reads more time.
                                    Default 0: on a saturated disk it can lose; measure with
                                    `moestream bench` first. Negative: MST_ERR_INVALID_ARGUMENT */
    int32_t rope_bf16_frequencies; /* nonzero: round the RoPE inverse frequencies to bf16, as
                                    transformers does when it holds a model in bf16 (its buffer
                                    is cast with the weights). Reproduces references computed that
                                    way; the default 0 keeps them in float32, which is more accurate
                                    at long contexts */

    int32_t verify_checksums;    /* packed files: nonzero (default) checks the resident section's
                                    xxHash64 at load and each expert blob's when it is read
                                    (MST_ERR_CHECKSUM naming layer, expert, file and offset).
                                    0 skips both (bench/README.md measures the cost); the header
                                    and index are checked always */
    const char *vulkan_device;   /* vulkan: the device by index (as `moestream info` lists them) or
                                    a case-insensitive part of its name; NULL or "" (default): the
                                    MST_VULKAN_DEVICE environment variable, else the best device
                                    (discrete, then integrated, then CPU implementations) */
    uint64_t gpu_expert_cache_bytes; /* vulkan: byte budget of the experts kept in GPU memory
                                    (least recently used evicted first), apart from the
                                    expert_cache_bytes of host memory; 0 (default) = a quarter of
                                    the device memory on discrete GPUs, 256 MiB on unified-memory
                                    devices */
    float prefetch_min_share;    /* with prefetch: read a guessed expert only when its share of the
                                    guessed router weight is at least this, 0..1; 0 reads every
                                    guess. Negative (default): the library's rule, 0.14, the
                                    highest recall at 85% precision on trained routing
                                    (bench/RESULTS.md "Prefetch: a confidence rule") */
} mst_model_params;

MST_API void mst_model_default_params(mst_model_params *params);

/* Load a model from `path`: a Hugging Face checkpoint directory (config.json,
 * *.safetensors with optional model.safetensors.index.json, tokenizer.json) or a
 * moestream packed file written by mst_convert (docs/packed_format.md).
 * Only the non-expert weights are read now; experts stream from disk on demand.
 * `params` may be NULL for the defaults. On success *out owns the model; free it with
 * mst_model_free. An empty or unrecognised file is MST_ERR_BAD_FORMAT; a FIFO, device or
 * socket is MST_ERR_IO naming what it is; a tokenizer with more ids than config.json's
 * vocab_size is MST_ERR_BAD_FORMAT naming tokenizer.json. */
MST_API mst_status mst_model_load(const char *path, const mst_model_params *params,
                                  mst_model **out);
/* Give up the caller's handle. Sessions still open keep the model alive, and it is
 * released with the last of them. */
MST_API void mst_model_free(mst_model *model);

typedef struct mst_model_info {
    uint32_t struct_size;          /* set by the caller to sizeof(mst_model_info) */
    const char *architecture;      /* e.g. "qwen3_moe"; owned by the model */
    const char *backend;           /* the backend in use, e.g. "cpu"; owned by the model */
    const char *storage;           /* the storage tier in use, e.g. "pread"; owned by the model */
    int32_t n_layers;
    int32_t n_moe_layers;
    int32_t hidden_size;
    int32_t n_vocab;
    int32_t n_experts;             /* routed experts per MoE layer */
    int32_t experts_per_token;     /* the top-k in effect */
    int32_t model_experts_per_token; /* the model's own top-k */
    int32_t max_position_embeddings;
    int32_t eos_token_id;          /* the tokenizer's end-of-sequence id, -1 if none; generation
                                      stops at every id of mst_model_eos_tokens */
    uint64_t n_params_total;       /* all parameters */
    uint64_t n_params_active;      /* parameters used per token at the top-k in effect */
    uint64_t resident_bytes;       /* non-expert weights held in memory */
    uint64_t expert_bytes_total;   /* all routed expert weights, on disk */
    uint64_t expert_bytes_each;    /* one expert's weights (gate + up + down) */
    uint64_t expert_bytes_per_token; /* experts_per_token * n_moe_layers * expert_bytes_each */
    uint64_t expert_cache_bytes;   /* the expert cache budget */
    uint64_t kv_cache_bytes_per_token;      /* KV cache bytes one context token takes, all layers */
    uint64_t kv_cache_full_bytes_per_token; /* the same if full per-head keys and values were
                                               cached; larger than kv_cache_bytes_per_token only
                                               for models that cache a compressed form (MLA) */
    uint64_t recurrent_state_bytes; /* per session, fixed whatever the context: the conv and
                                       recurrent state of linear-attention layers (0 if none) */
    const char *tokenizer_kind;    /* e.g. "byte-level BPE (tokenizer.json)"; owned by the model */
    int32_t n_eos_ids;             /* distinct end-of-sequence ids: the tokenizer's eos_token and
                                      config.json's eos_token_id (an integer or a list) */
    int32_t n_weight_types;        /* entries for mst_model_get_weight_type */
} mst_model_info;

/* Fill `info` (whose struct_size the caller sets). Strings are owned by the model. */
MST_API mst_status mst_model_get_info(const mst_model *model, mst_model_info *info);

/* Every end-of-sequence id of the model, sorted and without repeats: the tokenizer's eos
 * token and each eos_token_id of config.json and generation_config.json (gpt-oss and Kimi
 * list several there). mst_generate stops at any of them. *ids is owned by the model
 * (NULL when *n is 0). */
MST_API mst_status mst_model_eos_tokens(const mst_model *model, const int32_t **ids, size_t *n);

typedef struct mst_weight_type {
    uint32_t struct_size;          /* set by the caller to sizeof(mst_weight_type) */
    const char *dtype;             /* "BF16", "F32", "F8_E4M3", "Q8", "Q4", "U8" (MXFP4), ...; static */
    int32_t experts;               /* 1: routed expert parts (FP8 block scales among them);
                                      0: the other weights the architecture reads */
    uint64_t tensors;              /* tensors (expert parts) stored in this type */
    uint64_t bytes;                /* their bytes as stored */
} mst_weight_type;

/* Entry `index` (0 .. mst_model_info.n_weight_types - 1) of the types the model's weights
 * are stored in, non-expert types first. MST_ERR_INVALID_ARGUMENT for an index past the end. */
MST_API mst_status mst_model_get_weight_type(const mst_model *model, int32_t index, mst_weight_type *type);

/* ---- tokenizer ------------------------------------------------------------------- */

/* Encode `len` bytes of UTF-8 `text` into token ids. Special tokens written in the text
 * (e.g. "<|im_end|>") are recognised, as Hugging Face tokenizers do by default.
 * The count is always written to *n_out; if it exceeds `capacity`, nothing past
 * `capacity` is written and MST_ERR_BUFFER_TOO_SMALL is returned (`out` may be NULL
 * with capacity 0 to query the count). */
MST_API mst_status mst_tokenize(const mst_model *model, const char *text, size_t len,
                                int32_t *out, size_t capacity, size_t *n_out);

/* Decode ids into UTF-8 bytes (not NUL-terminated; a NUL is added if room remains).
 * The byte count is always written to *n_bytes; MST_ERR_BUFFER_TOO_SMALL if it exceeds
 * `capacity` (`out` may be NULL with capacity 0 to query the count). Every id below
 * mst_model_info.n_vocab is accepted: rows past the tokenizer's ids (a vocabulary padded
 * to a round size) decode to nothing. An id outside 0..n_vocab-1 is
 * MST_ERR_INVALID_ARGUMENT. */
MST_API mst_status mst_detokenize(const mst_model *model, const int32_t *tokens, size_t n,
                                  char *out, size_t capacity, size_t *n_bytes);

/* The text of one token id (owned by the model): "" for a row without a token, NULL
 * outside 0..n_vocab-1. */
MST_API const char *mst_token_text(const mst_model *model, int32_t token);

/* The kind of tokenizer the model came with: "byte-level BPE" (tokenizer.json, as Qwen,
 * DeepSeek and gpt-oss ship it), "SentencePiece BPE" (tokenizer.json with byte fallback or
 * "▁" spaces: Llama 2, Mistral, Mixtral) or "tiktoken" (tiktoken.model: Kimi K2). A static
 * string; NULL if model is NULL. */
MST_API const char *mst_tokenizer_kind(const mst_model *model);

/* ---- session --------------------------------------------------------------------- */

typedef struct mst_session mst_session;

typedef struct mst_session_params {
    uint32_t struct_size; /* sizeof(mst_session_params) */
    uint32_t n_ctx;       /* context length in tokens; 0 = min(model maximum, 4096) */
    uint64_t seed;        /* sampling seed */
    uint32_t all_logits;  /* nonzero: keep the logits of every evaluated position
                             (see mst_session_all_logits); default 0, last position only */
    uint32_t n_batch;     /* tokens per forward pass in prefill; 0 = 512 */
} mst_session_params;

MST_API void mst_session_default_params(mst_session_params *params);

/* Create a session (its own KV cache and statistics) over `model`. Sessions of one
 * model share its weights and expert cache, and keep the model alive after mst_model_free.
 * Sessions may run on different threads; one session serves one call at a time: a call
 * made while another thread is inside the session fails with MST_ERR_BUSY, as does a call
 * that would change the session from inside its own mst_generate callback (reading it
 * there, e.g. mst_session_logits, is allowed). mst_session_n_past may be called at any
 * time. Freeing a session while another thread is inside it is still the caller's bug. */
MST_API mst_status mst_session_create(mst_model *model, const mst_session_params *params,
                                      mst_session **out);
MST_API void mst_session_free(mst_session *session);

/* Append n tokens to the context and run the model over them (many tokens at once is
 * a prefill). Fails with MST_ERR_CONTEXT_FULL past n_ctx and MST_ERR_INVALID_ARGUMENT
 * for an id outside the vocabulary, leaving the context as it was. */
MST_API mst_status mst_session_eval(mst_session *session, const int32_t *tokens, size_t n);

/* The logits after the last evaluated token. Valid until the next call on the session. */
MST_API mst_status mst_session_logits(mst_session *session, const float **logits,
                                      size_t *n_vocab);

/* With all_logits set: the logits of every position of the last mst_session_eval call,
 * row-major [n_rows][n_vocab]. Valid until the next call on the session. */
MST_API mst_status mst_session_all_logits(mst_session *session, const float **logits,
                                          size_t *n_rows, size_t *n_vocab);

/* Number of tokens in the context. */
MST_API size_t mst_session_n_past(const mst_session *session);

/* Forget the context (keeps the statistics). While the session is busy (see
 * mst_session_create) nothing happens: a warning is logged and mst_last_error says so. */
MST_API void mst_session_reset(mst_session *session);

/* Reseed the session's random generator (as mst_session_params.seed does at creation), so
 * that one session can serve requests that each ask for their own seed. */
MST_API mst_status mst_session_set_seed(mst_session *session, uint64_t seed);

/* Keep the first n_keep tokens of the context and forget the rest, so that a conversation
 * can be rewound or a prompt prefix shared with the context reused: evaluating the rest
 * afterwards gives what a fresh evaluation of the whole would. The logits are unavailable
 * until the next evaluation. n_keep past mst_session_n_past is MST_ERR_INVALID_ARGUMENT;
 * a model with a recurrent state (Qwen3.5's linear-attention layers) cannot be rewound:
 * 0 < n_keep < n_past there is MST_ERR_UNSUPPORTED (keep 0, or restore a saved state). */
MST_API mst_status mst_session_trim(mst_session *session, size_t n_keep);

/* Save the session's state: its context (tokens and KV cache or recurrent state), its last
 * logits and its random generator, as a versioned, checksummed byte string
 * (lib/session/session_state.h). Statistics and the expert budget are not part of it.
 * `*n_bytes` is always set to the size; with `capacity` below it (0 and out NULL to ask)
 * nothing is written and MST_ERR_BUFFER_TOO_SMALL returned. */
MST_API mst_status mst_session_state_save(mst_session *session, void *out, size_t capacity, size_t *n_bytes);

/* Replace the session's state with one saved by mst_session_state_save from a session of
 * the same model (its n_ctx may differ if the saved tokens fit). Checked before anything
 * changes, each a named error: not a state or truncated, MST_ERR_BAD_FORMAT; altered,
 * MST_ERR_CHECKSUM; another format version, MST_ERR_UNSUPPORTED; another model,
 * MST_ERR_INVALID_ARGUMENT; more tokens than n_ctx, MST_ERR_CONTEXT_FULL. Generation
 * afterwards continues exactly as the saved session would have (same logits, same samples). */
MST_API mst_status mst_session_state_load(mst_session *session, const void *data, size_t n_bytes);

/* The same through a file: written under a temporary name and renamed when complete
 * (replacing an existing file); read back whole and checked as mst_session_state_load. */
MST_API mst_status mst_session_state_save_file(mst_session *session, const char *path);
MST_API mst_status mst_session_state_load_file(mst_session *session, const char *path);

/* Evaluate several sessions of one model together: tokens[i] (n_tokens[i] > 0 ids) is
 * appended to sessions[i] as mst_session_eval would append it, but the sessions' rows go
 * through each layer together, and each routed expert runs once over every row routed to
 * it, so that an expert read from storage serves every session that chose it (the gain of
 * decoding many conversations over one stream of experts). Architectures that batch:
 * Qwen3-MoE, Mixtral, gpt-oss and DeepSeek-V3 / Kimi K2; the others evaluate the
 * sessions in turn with the same results. A prompt longer than a session's n_batch goes
 * n_batch tokens per round; sessions whose expert budget has another experts_per_token
 * form a batch of their own.
 *
 * Each session's logits, context and samples afterwards are those mst_session_eval of its
 * tokens gives, within float reassociation: a row's dense products, attention, experts
 * and their weighted sum are the same operations in the same order as alone; only a
 * kernel that blocks several rows differently may sum them in another order (relative
 * error of the logits within a few 1e-6 of float32). Greedy choices agree.
 *
 * Checked before anything runs, naming the session by index: MST_ERR_INVALID_ARGUMENT for
 * n_sessions 0, a NULL pointer, sessions of different models, a session twice, an empty
 * token list or an id outside the vocabulary; MST_ERR_CONTEXT_FULL for a session whose
 * tokens overflow its n_ctx; MST_ERR_BUSY for a session in use by another thread. On any
 * failure every session is left as it was. Statistics: each session counts the call's
 * wall time as mst_session_eval would (a prompt or one decode step), and the expert reads
 * of a batched step in proportion to its tokens in it, so the sessions' counts add up to
 * what was read. */
MST_API mst_status mst_sessions_eval_batch(mst_session *const *sessions, const int32_t *const *tokens,
                                           const size_t *n_tokens, size_t n_sessions);

/* ---- the expert budget ----------------------------------------------------------- */

/* How many routed experts each token runs, and further rules that drop more of them.
 * experts_per_token overrides the router's top-k, following each architecture's own rule
 * for the kept weights: softmax top-k routers (Qwen3-MoE, Mixtral) take the softmax over
 * all experts, keep the k largest, and renormalise them when the model does
 * (norm_topk_prob; Mixtral always). The further rules judge each kept expert by its
 * weight normalised over the token's top-k, always keep the top one, and rescale the
 * survivors to the top-k's sum when the model renormalises:
 *   min_weight        drop experts whose normalised weight is below it (0 = off);
 *   mass              keep the fewest experts whose normalised weights reach it (1 = off);
 *   cache_skip_below  skip an expert that is not in memory when its normalised weight is
 *                     below it; the weight mass skipped is in mst_session_stats (0 = off);
 *   cache_substitute  cache-aware routing: an expert that is not in memory (the top one
 *                     aside) is replaced by a cached expert among the router's next k ranks
 *                     whose router weight is at least cache_substitute times its own; the
 *                     substitute takes its weight. Applied before the rules above; the count
 *                     is in mst_session_stats.experts_substituted (0 = off). */
typedef struct mst_expert_budget {
    uint32_t struct_size;      /* sizeof(mst_expert_budget) */
    int32_t experts_per_token; /* 0 = the model's setting (mst_model_params.experts_per_token) */
    float min_weight;
    float mass;
    float cache_skip_below;
    float cache_substitute;
} mst_expert_budget;

MST_API void mst_expert_budget_default(mst_expert_budget *budget);
/* Set the budget of one session; applies from its next evaluation. */
MST_API mst_status mst_session_set_expert_budget(mst_session *session, const mst_expert_budget *budget);
MST_API mst_status mst_session_get_expert_budget(const mst_session *session, mst_expert_budget *budget);

/* ---- sampling and generation ----------------------------------------------------- */

typedef struct mst_sampler_params {
    uint32_t struct_size;     /* sizeof(mst_sampler_params) */
    float temperature;        /* <= 0: greedy (argmax). Default 0.8 */
    int32_t top_k;            /* keep the k most likely; <= 0 disables. Default 40 */
    float top_p;              /* nucleus: keep the smallest set with mass >= p; 1 disables. Default 0.95 */
    float min_p;              /* drop tokens below min_p * p(max); 0 disables. Default 0.05 */
    float repetition_penalty; /* > 1 discourages tokens already in the context; 1 disables. Default 1 */
    int32_t repetition_last_n;/* how many recent tokens the penalty looks at; default 64 */
} mst_sampler_params;

MST_API void mst_sampler_default_params(mst_sampler_params *params);

/* Sample the next token from the session's current logits, using the session's
 * random generator (seeded by mst_session_params.seed). Does not evaluate it. */
MST_API mst_status mst_session_sample(mst_session *session, const mst_sampler_params *params,
                                      int32_t *token);

/* Called once per generated token with its id (always a real token id, never -1) and
 * decoded UTF-8 piece (not NUL-terminated; a multi-byte character split across tokens
 * arrives whole with the token that completes it; text held back as a possible start of a
 * stop string arrives with a later token, at the latest the last one). The
 * end-of-sequence token is passed too, with whatever text was still held back and none
 * of its own. Return nonzero to stop generation. */
typedef int (*mst_token_callback)(int32_t token, const char *piece, size_t piece_len,
                                  void *user_data);

typedef struct mst_generate_params {
    uint32_t struct_size;        /* sizeof(mst_generate_params) */
    int32_t max_tokens;          /* at most this many new tokens; default 256 */
    mst_sampler_params sampler;  /* filled with mst_sampler_default_params */
    const char *const *stop;     /* NULL or an array of n_stop stop strings */
    size_t n_stop;
    uint32_t ignore_eos;         /* nonzero: do not stop at the end-of-sequence token */
    struct mst_batcher *batcher; /* NULL (default): evaluate alone. Else the prompt and every
                                    sampled token are evaluated in the batcher's steps, together
                                    with the other generations using it (see mst_batcher_create);
                                    the session must be of the batcher's model */
} mst_generate_params;

MST_API void mst_generate_default_params(mst_generate_params *params);

typedef enum mst_stop_reason {
    MST_STOP_NONE = 0,
    MST_STOP_EOS = 1,
    MST_STOP_MAX_TOKENS = 2,
    MST_STOP_STRING = 3,
    MST_STOP_CALLBACK = 4,
    MST_STOP_CONTEXT_FULL = 5
} mst_stop_reason;

/* Evaluate the prompt tokens (may be n_prompt = 0 to continue), then sample and
 * evaluate up to max_tokens tokens, calling `callback` (may be NULL) for each. Text
 * matching a stop string is not passed to the callback. *reason (may be NULL) says why
 * it stopped. Every token passed to the callback is in the context afterwards, whatever
 * stopped generation (the end-of-sequence token, the tokens of a stop string, the token
 * whose callback asked to stop), so a continued conversation sees them; generation
 * stops at any id of mst_model_eos_tokens unless ignore_eos, and with
 * MST_STOP_CONTEXT_FULL before sampling a token the context has no room for. Logits that
 * are NaN or infinite are MST_ERR_BACKEND (also from mst_session_sample), never a token. */
MST_API mst_status mst_generate(mst_session *session, const int32_t *prompt, size_t n_prompt,
                                const mst_generate_params *params, mst_token_callback callback,
                                void *user_data, mst_stop_reason *reason);

/* A batcher lets mst_generate calls on several threads (one session each, all of one
 * model) decode as one batch: each generation hands its prompt and every sampled token to
 * the batcher, and a step evaluates what all of them handed in with one
 * mst_sessions_eval_batch, so that an expert read from storage serves every sequence
 * routed to it. A step runs once every generation using the batcher has handed in its
 * tokens, or gather_wait_us after the first did (a generation still in its callback,
 * e.g. writing to a slow client, then joins the next step). Each generation's tokens,
 * text and stop reason are what it gets alone (mst_sessions_eval_batch's bound). The
 * batcher keeps its model alive; free it after the generations using it have returned. */
typedef struct mst_batcher mst_batcher;

typedef struct mst_batcher_params {
    uint32_t struct_size;    /* sizeof(mst_batcher_params) */
    uint32_t gather_wait_us; /* longest wait for generations not yet in a step; default 2000 */
} mst_batcher_params;

MST_API void mst_batcher_default_params(mst_batcher_params *params);
MST_API mst_status mst_batcher_create(mst_model *model, const mst_batcher_params *params, mst_batcher **out);
MST_API void mst_batcher_free(mst_batcher *batcher);

typedef struct mst_batcher_stats {
    uint32_t struct_size;       /* set by the caller to sizeof(mst_batcher_stats) */
    uint64_t steps;             /* batched evaluations run */
    uint64_t sequences;         /* sessions summed over the steps (mean batch = sequences / steps) */
    uint64_t tokens;            /* tokens summed over the steps */
    uint64_t max_sequences;     /* the largest step */
    uint64_t steps_by_size[7];  /* steps of 1, 2, 3-4, 5-8, 9-16, 17-32 and more sessions */
} mst_batcher_stats;

MST_API mst_status mst_batcher_get_stats(const mst_batcher *batcher, mst_batcher_stats *stats);

/* ---- statistics ------------------------------------------------------------------ */

typedef struct mst_session_stats {
    uint32_t struct_size;        /* set by the caller to sizeof(mst_session_stats) */
    uint64_t n_prompt_tokens;    /* prompt tokens: mst_generate prompts, and mst_session_eval batches of more than one */
    uint64_t n_decode_tokens;    /* generated tokens, and single-token mst_session_eval calls */
    double prompt_seconds;
    double decode_seconds;
    double prompt_tokens_per_second;
    double decode_tokens_per_second;
    uint64_t expert_bytes_read;  /* bytes read from storage for this session's experts */
    uint64_t expert_cache_hits;  /* expert lookups served from the cache */
    uint64_t expert_cache_misses;/* expert lookups that read storage */
    double expert_read_seconds;  /* wall time spent waiting for expert reads */
    uint64_t experts_chosen;     /* routed-expert slots the routers filled (tokens x top-k x layers) */
    uint64_t experts_skipped;    /* of those, dropped by the budget rules */
    double skipped_weight_mass;  /* sum of the normalised weights dropped (divide by tokens x
                                    MoE layers for the mean mass lost per token and layer) */
    uint64_t experts_substituted;/* routed-expert slots given a cached expert in place of the
                                    chosen one (mst_expert_budget.cache_substitute) */
} mst_session_stats;

MST_API mst_status mst_session_get_stats(const mst_session *session, mst_session_stats *stats);

typedef struct mst_memory_stats {
    uint32_t struct_size;           /* set by the caller to sizeof(mst_memory_stats) */
    uint64_t resident_weight_bytes; /* non-expert weights held */
    uint64_t expert_cache_bytes;    /* expert bytes held now */
    uint64_t expert_cache_peak_bytes;
    uint64_t expert_cache_budget;
    uint64_t process_rss_bytes;     /* current resident set of the process (0 if unknown) */
    uint64_t process_peak_rss_bytes;/* peak resident set of the process (0 if unknown) */
} mst_memory_stats;

MST_API mst_status mst_model_get_memory_stats(const mst_model *model, mst_memory_stats *stats);

/* What the model's backend has done on the host since the model was loaded (all sessions
 * together); all 0 on the CPU backend. A device backend records its commands into command
 * buffers and, where a submission's commands are those of an earlier one (decode steps),
 * submits that recording again; it compiles each compute pipeline on first use. */
typedef struct mst_backend_stats {
    uint32_t struct_size;           /* set by the caller to sizeof(mst_backend_stats) */
    uint64_t submissions;           /* command buffers handed to the device */
    uint64_t replayed;              /* of those, earlier recordings submitted again */
    uint64_t recorded;              /* of those, recorded afresh */
    uint64_t pipelines_created;     /* compute pipelines compiled so far */
    double pipeline_create_seconds; /* host seconds their compilation took */
} mst_backend_stats;

MST_API mst_status mst_model_get_backend_stats(const mst_model *model, mst_backend_stats *stats);

typedef struct mst_cache_stats {
    uint32_t struct_size;   /* set by the caller to sizeof(mst_cache_stats) */
    uint64_t hits;          /* expert lookups served from the expert cache */
    uint64_t misses;        /* expert lookups that read storage */
    uint64_t evictions;     /* experts dropped to stay within the budget */
    uint64_t bytes_read;    /* expert bytes read from storage */
    uint64_t bytes_held;    /* expert bytes in the cache now (whole cache only; 0 per layer) */
    uint64_t entries;       /* experts in the cache now (whole cache only; 0 per layer) */
    uint64_t prefetch_predicted; /* experts the prefetcher read ahead */
    uint64_t prefetch_used;      /* of those, the ones the router then chose */
    uint64_t prefetch_needed;    /* experts chosen in steps the prefetcher predicted for */
    uint64_t prefetch_wasted_bytes; /* bytes read ahead for experts that were not chosen */
    /* The GPU expert cache (backend vulkan; 0 elsewhere and per layer), one level below the
     * host cache: counted per expert part (gate, up, down). */
    uint64_t gpu_hits;              /* parts found on the device */
    uint64_t gpu_misses;            /* parts copied to the device when a layer needed them */
    uint64_t gpu_evictions;
    uint64_t gpu_bytes_uploaded;    /* host to device (PCIe on a discrete GPU), prefetches included */
    uint64_t gpu_direct_bytes;      /* uploads the device copied from imported host memory (no memcpy) */
    uint64_t gpu_staged_bytes;      /* uploads through the staging buffer (a host memcpy first) */
    uint64_t gpu_prefetched;        /* parts of guessed experts copied ahead (with prefetch) */
    uint64_t gpu_prefetch_used;     /* of those, found on the device when a layer needed them */
    uint64_t gpu_prefetch_wasted;   /* of those, evicted before any layer needed them */
    uint64_t gpu_prefetch_skipped;  /* guesses not copied: no room without evicting the current layer's */
} mst_cache_stats;

/* Expert-cache statistics of the model (all sessions together): of one layer, or of the
 * whole model with layer = -1. Prefetch precision = used / predicted, recall = used /
 * needed. */
MST_API mst_status mst_model_get_cache_stats(const mst_model *model, int32_t layer, mst_cache_stats *stats);

/* ---- conversion to the packed format --------------------------------------------- */

/* Called as a conversion proceeds with the source bytes processed and their total.
 * Return nonzero to cancel (mst_convert then returns MST_ERR_CANCELLED). */
typedef int (*mst_convert_progress_callback)(uint64_t done_bytes, uint64_t total_bytes, void *user_data);

typedef struct mst_convert_params {
    uint32_t struct_size;      /* sizeof(mst_convert_params) */
    const char *experts;       /* routed experts: "q4" (default, 5.0 bits per weight) | "q8" (8.5) |
                                  GGML's K-quants "q6k" (6.5625) | "q5k" (5.5) | "q4k" (4.5) |
                                  "q3k" (3.4375) | "q2k" (2.625) | "bf16" (kept as stored) */
    const char *dense;         /* attention, embeddings, shared experts, dense MLPs: "bf16" (default,
                                  kept as stored) | "q8". Routers and norms are never quantized */
    int32_t zstd_level;        /* 0 (default): no compression; 1..19: zstd per expert blob, kept
                                  only where it makes the blob smaller */
    int32_t force;             /* nonzero: replace an existing output file */
    int32_t n_threads;         /* quantization threads; 0 = all cores */
    mst_convert_progress_callback progress; /* may be NULL */
    void *progress_user_data;
} mst_convert_params;

MST_API void mst_convert_default_params(mst_convert_params *params);

typedef struct mst_convert_report {
    uint32_t struct_size;          /* set by the caller to sizeof(mst_convert_report) */
    uint64_t file_bytes;           /* the packed file */
    uint64_t source_bytes;         /* tensors read from the checkpoint */
    uint64_t resident_bytes;       /* non-expert tensors written */
    uint64_t resident_tensors;
    uint64_t quantized_tensors;    /* of those, stored as q8 */
    uint64_t dropped_tensors;      /* checkpoint tensors the architecture never reads (left out) */
    uint64_t expert_blobs;
    uint64_t expert_raw_bytes;     /* experts as decoded */
    uint64_t expert_stored_bytes;  /* experts on disk */
    uint64_t compressed_blobs;     /* blobs stored zstd-compressed */
    double seconds;
    uint64_t requantized_fp8_tensors; /* resident FP8 (block-scaled E4M3) tensors written as q8 */
    const char *notes;             /* what the options asked for but could not change, one line
                                      each ("" if nothing); owned by the library, valid until the
                                      next mst_convert or mst_synthesize on this thread */
} mst_convert_report;

/* Convert the Hugging Face checkpoint directory, or the GGUF file (a split one's first
 * shard; config, tokenizer and chat template from its metadata), `src` into the packed
 * file `dst`: one file with the config, tokenizer, every non-expert weight and one
 * 4 KiB-aligned blob per expert, each with an xxHash64. It is written under a temporary
 * name beside `dst` and renamed only when complete; an existing `dst` is an error (MST_ERR_IO) unless
 * params->force is set, and so is a disk without room for the file (checked first).
 * `params` may be NULL for the defaults; `report` may be NULL. */
MST_API mst_status mst_convert(const char *src, const char *dst, const mst_convert_params *params,
                               mst_convert_report *report);

/* ---- synthesized models ---------------------------------------------------------- */

typedef struct mst_synthesize_params {
    uint32_t struct_size;      /* sizeof(mst_synthesize_params) */
    int32_t layers;            /* 0 (default): the config's num_hidden_layers; else its first N layers */
    const char *experts;       /* routed experts: "q4" (default) | "q8" | "bf16" */
    const char *dense;         /* attention, embeddings, shared experts: "bf16" (default) | "q8" */
    uint64_t seed;             /* same seed, same config, same options: the same file, byte for byte */
    int32_t force;             /* nonzero: replace an existing output file */
    int32_t n_threads;         /* generation threads; 0 = all cores */
    mst_convert_progress_callback progress; /* bytes of the file written; may be NULL */
    void *progress_user_data;
    const char *routing_from;  /* NULL or "" (default): plain routers; else a routing trace
                                  (bench_routing record / bench --trace) whose per-layer expert
                                  popularity the routers are scaled to reproduce */
    const char *routing_text;  /* with routing_from: a text file the routers are calibrated on
                                  (its first 1024 tokens); NULL or "": English-like letters */
    const char *tokenizer_from; /* NULL or "" (default): a byte-level tokenizer; else a trained
                                  model's tokenizer.json (or its checkpoint directory), copied
                                  into the file, vocab_size raised to hold its ids if smaller;
                                  with routing_from, the traced model's own, so that its tokens
                                  are the ones calibrated on and measured */
    int32_t routing_reuse;     /* with routing_from, nonzero: also shape reuse between tokens:
                                  recency heads in full attention (Qwen3-MoE, DeepSeek-V3,
                                  Qwen3.5-MoE, whose Gated DeltaNet layers get an analogue)
                                  whose per-layer output gain is calibrated against the trace's
                                  next-token reuse
                                  over its first tokens (routing_text: the text it was recorded
                                  on); 0 (default): popularity only */
} mst_synthesize_params;

MST_API void mst_synthesize_default_params(mst_synthesize_params *params);

typedef struct mst_synthesize_report {
    uint32_t struct_size;          /* set by the caller to sizeof(mst_synthesize_report) */
    uint64_t file_bytes;
    uint64_t resident_bytes;
    uint64_t resident_tensors;
    uint64_t quantized_tensors;    /* resident tensors stored as q8 */
    uint64_t expert_blobs;
    uint64_t expert_bytes;
    int32_t layers;                /* layers written */
    int32_t source_layers;         /* num_hidden_layers of the config given */
    double seconds;
    const char *notes;             /* how the written weights differ from the config's published
                                      form (e.g. FP8 written as q4), one line each ("" if none);
                                      valid until the next mst_convert or mst_synthesize on this
                                      thread */
} mst_synthesize_report;

/* Write a packed file `dst` with the shapes of the Hugging Face config.json at
 * `config_path` (any architecture mst_model_load supports) and random weights scaled so
 * that activations stay finite through every layer, plus a byte-level tokenizer (256
 * byte tokens, the config's special tokens, filler words up to vocab_size). The text it
 * generates is noise; its speed, expert traffic and cache behaviour are the real
 * shape's. Written under a temporary name and renamed when complete; an existing `dst`
 * needs params->force; the free space is checked first (MST_ERR_IO naming both sizes).
 * A config with a missing or bad field is MST_ERR_BAD_FORMAT naming the field, an
 * unknown model_type MST_ERR_UNSUPPORTED. `params` and `report` may be NULL. */
MST_API mst_status mst_synthesize(const char *config_path, const char *dst, const mst_synthesize_params *params,
                                  mst_synthesize_report *report);

/* ---- chat templates -------------------------------------------------------------- */

/* One message of a conversation. Strings are UTF-8, NUL-terminated, and only read
 * during the call. */
typedef struct mst_chat_message {
    const char *role;            /* "system", "user", "assistant", "tool", "developer", ... */
    const char *content;         /* the text; NULL = None (an assistant turn with only tool calls) */
    const char *tool_calls_json; /* NULL, or a JSON array such as
                                    [{"id": "call_1", "type": "function",
                                      "function": {"name": "f", "arguments": {"x": 1}}}] */
    const char *tool_call_id;    /* NULL, or the call a "tool" message answers */
    const char *name;            /* NULL, or the tool's name in a "tool" message */
    const char *extra_json;      /* NULL, or a JSON object whose fields join the message:
                                    {"reasoning_content": "..."}, {"thinking": "..."}, or
                                    {"content": [{"type": "text", "text": "..."}]} */
} mst_chat_message;

typedef struct mst_chat_template_params {
    uint32_t struct_size;          /* set by mst_chat_template_default_params */
    int32_t add_generation_prompt; /* 1 (default): end with the opening of the assistant's turn */
    const char *tools_json;        /* NULL, or a JSON array of tool definitions
                                      ({"type": "function", "function": {...}}) */
    const char *variables_json;    /* NULL, or a JSON object of more template variables:
                                      {"enable_thinking": false}, {"reasoning_effort": "high"},
                                      "bos_token", ...; they override the model's special tokens */
    int64_t now_unix;              /* the time strftime_now() sees, in seconds since 1970;
                                      0 (default) = the current time */
    const char *template_name;     /* model calls: NULL = the default template, or "tool_use"
                                      when tools are given and the model names one */
} mst_chat_template_params;

MST_API void mst_chat_template_default_params(mst_chat_template_params *params);

/* Render a Jinja chat template (the text of a model's chat_template) with `messages` as
 * transformers' apply_chat_template(tokenize=False) does: the template sees messages,
 * tools (None if absent), add_generation_prompt and the variables. The result, `*n_bytes`
 * bytes, is written to `out` and NUL-terminated when `capacity` leaves room; a smaller
 * `capacity` (0 with out NULL to ask) gives MST_ERR_BUFFER_TOO_SMALL with `*n_bytes` set.
 * A template that does not parse is MST_ERR_BAD_FORMAT; one that fails while rendering
 * (its own raise_exception, an undefined value used, a limit on depth, steps or output
 * size passed) is MST_ERR_INVALID_ARGUMENT; both messages name the template line. */
MST_API mst_status mst_chat_apply_template(const char *template_text, const mst_chat_message *messages,
                                           size_t n_messages, const mst_chat_template_params *params,
                                           char *out, size_t capacity, size_t *n_bytes);

/* The model's chat template: chat_template.jinja in its directory (or packed metadata),
 * else tokenizer_config.json's "chat_template" (a string, or a list of named templates:
 * `name` picks one, NULL the default). MST_ERR_UNSUPPORTED if the model has none. Output
 * as for mst_chat_apply_template. */
MST_API mst_status mst_model_chat_template(const mst_model *model, const char *name, char *out,
                                           size_t capacity, size_t *n_bytes);

/* mst_chat_apply_template with the model's own template and special tokens (bos_token,
 * eos_token, ... from its tokenizer_config.json). */
MST_API mst_status mst_model_apply_chat_template(const mst_model *model, const mst_chat_message *messages,
                                                 size_t n_messages, const mst_chat_template_params *params,
                                                 char *out, size_t capacity, size_t *n_bytes);

#ifdef __cplusplus
}
#endif

#endif /* MOESTREAM_H */
