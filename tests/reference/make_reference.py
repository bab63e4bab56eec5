#!/usr/bin/env python3
"""Generate moestream's self-contained reference data with Hugging Face libraries.

Run (needs torch, transformers >= 5, tokenizers, safetensors, numpy):

    python3 tests/reference/make_reference.py --out DIR

Everything is deterministic (fixed seeds, CPU float32 arithmetic).  DIR receives:

    tokenizer/                  byte-level BPE tokenizer + golden_encode.json
    qwen3_moe_tiny/             Qwen3MoeForCausalLM, bf16, per-expert tensor names
    qwen3_moe_sharded_legacy/   same weights: legacy config.json, 3 shards, fused experts
    qwen3_moe_mixed_dtype/      F16 attention, F32 norms/embeddings, BF16 rest
    reference_info.json         versions, seeds, layouts and checks recorded while generating

See tests/reference/README.md for the meaning of every file.
"""

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

PROMPT = ("<|im_start|>user\nExplain mixture of experts to a five year old.<|im_end|>\n"
          "<|im_start|>assistant\n")
N_GREEDY = 16

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EXTRA_TOKEN = "<think>"  # a non-special added token (as in Qwen3)
TOKENIZER_VOCAB = 1000    # trained size, incl. 3 specials + 256 byte tokens (+1 added token)

CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

CORPUS = r"""
A mixture of experts is a neural network in which many small expert networks share the work.
For every token, a router looks at the hidden state and picks a few experts; only those experts run.
Explain it to a five year old: imagine a class where each child is an expert at one thing.
When a question comes, the teacher asks the two or four children who know the most about it.
The answers are mixed together, weighted by how much the teacher trusts each child.
That is why a model with thirty billion parameters can run as fast as a model with three billion.
Experts are stored on disk and streamed into memory when the router asks for them.
The user asked the assistant a question, and the assistant answered with a long explanation.
I'm sure you'll like it. It's simple, isn't it? They're here, we've seen them, I'd say so.
You'd think THEY'LL come back; We'RE ready. She's fast, he's slow, it'll work, don't worry.
Once upon a time, in a small village by the sea, there lived an old fisherman and his wife.
Every morning the fisherman went out in his boat, and every evening he came home with fish.
The weather was cold in winter and warm in summer; the children played in the garden all day.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 256 1000 1024 2048 4096 65536 3.14159 2.71828
The year 2024 had 366 days; the year 2023 had 365. Prices rose by 7.5% to $19.99 per item.
Phone: +1 (555) 123-4567. Date: 2025-11-21T10:12:00Z. Version v1.2.3, build #4567.
def route(hidden, gate, top_k=4):
    logits = hidden @ gate.T
    probs = softmax(logits, dim=-1)
    weights, experts = probs.topk(top_k)
    return weights / weights.sum(-1, keepdim=True), experts

for (int i = 0; i < n; ++i) {
    sum += a[i] * b[i];
}
if (x != nullptr && x->size() > 0) { return x->data(); } else { throw std::runtime_error("empty"); }
#include <vector>
std::vector<float> out(hidden_size, 0.0f);
class Expert { public: void forward(const float* x, float* y) const; };
import numpy as np
x = np.zeros((4, 64), dtype=np.float32)
print("Hello, world!")  # prints a greeting
SELECT name, value FROM weights WHERE layer = 3 ORDER BY name;
{"name": "model.layers.0.mlp.experts.7.down_proj.weight", "dtype": "BF16", "shape": [64, 32]}
<html><body><p class="note">Hello &amp; welcome</p></body></html>
The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.
Pack my box with five dozen liquor jugs. How vexingly quick daft zebras jump!
Mixture-of-Experts (MoE) layers replace the dense feed-forward block of a transformer.
Attention uses queries, keys and values; rotary position embeddings rotate queries and keys.
RMS normalization divides by the root mean square and multiplies by a learned weight.
Tokens are encoded by a byte-level BPE tokenizer; merges join frequent pairs of symbols.
混合专家模型是一种神经网络，每个词元只激活少数几个专家。
你好，世界！今天天气很好，我们去公园散步吧。专家模型可以在磁盘上存储，并按需加载到内存中。
中文文本的分词需要字节级别的处理。我们学习了很多新的知识。
Привет, мир! Смесь экспертов — это нейронная сеть, в которой работают несколько экспертов.
Как дела? Всё хорошо, спасибо. Москва, Киев, Минск. Программа читает веса с диска.
Γειά σου κόσμε. Καλημέρα! Ünïcödé façade café naïve résumé coöperate Ångström.
Emoji: 🎉🚀😀👍❤️🔥✨🤖 👨‍👩‍👧 family, 🇩🇪 flag, ✅ done, ⚠️ warning.
Tabs\tand\tspaces    and newlines\r\nwindows line endings\r\nand more.
   indented text with leading spaces
trailing spaces here   
Hello there! Hello again. Hello, hello, HELLO. hello world hello model hello expert.
experts expert expertise experiment mixture mixtures mixed mixing model models modeling
old older oldest year years five fifth four fourth explain explains explained explaining
"""


def natural_key(name):
    return [int(p) if p.isdigit() else p for p in name.replace(".", " . ").split()]


# ----------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------

def build_tokenizer(out_dir):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB, min_frequency=1, show_progress=False,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = [l for l in CORPUS.split("\n")]
    # Repeat lines with different weights so merge frequencies are not all equal.
    corpus = [l + "\n" for i, l in enumerate(lines) for _ in range(1 + (i % 3))]
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(EXTRA_TOKEN, special=False, normalized=False)])
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t))
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    # tokenizers 0.23 wrote this decoder with add_prefix_space/trim_offsets/use_regex = true
    # whatever was passed; write it as real Qwen tokenizer.json files have it (these flags do
    # not change ByteLevel decoding).
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    tj["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                     "use_regex": False}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    tok = Tokenizer.from_file(path)
    n = tok.get_vocab_size(with_added_tokens=True)
    added = {}
    for t in SPECIAL_TOKENS + [EXTRA_TOKEN]:
        added[str(tok.token_to_id(t))] = {"content": t, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False,
                                          "special": t in SPECIAL_TOKENS}
    return n, added


def write_legacy_merges(src, dst):
    """tokenizer.json with merges as "a b" strings (the format of older files on the Hub)."""
    with open(src, encoding="utf-8") as f:
        tj = json.load(f)
    merges = tj["model"]["merges"]
    if merges and isinstance(merges[0], list):
        assert all(" " not in a and " " not in b for a, b in merges)
        tj["model"]["merges"] = [f"{a} {b}" for a, b in merges]
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(tj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_tokenizer_config(out_dir, added, tokenizer_class):
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 4096,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": tokenizer_class,
        "unk_token": None,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


GOLDEN_TEXTS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How are you?",
    "   leading spaces",
    "trailing spaces   ",
    "multiple   spaces\tand\ttabs  \t ",
    "line1\nline2\r\nline3\n\n\nline4",
    "\r\n\r\n",
    "\t\t\n  \n   x",
    "I'm sure you'LL see it's THEY'RE here, we'Ve said I'D go.",
    "DON'T can't won't o'clock rock'n'roll",
    "1234567890 3.14159 -42 1e10 0x1F",
    "The year 2024 had 366 days, price $19.99 (7.5%).",
    "def foo(x):\n    return x * 2  # comment\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "你好，世界！我们今天学习混合专家模型。",
    "Привет, мир! Как дела?",
    "emoji 🎉🚀 and 👨‍👩‍👧 family 🇩🇪",
    "e\u0301 cafe\u0301 na\u0308ive A\u030a",
    "\u212b and \u2126 (compatibility signs NFC rewrites)",
    "\uff21\uff22\uff23 full-width and x\u00b2 \u00bd \ufb01 (NFC keeps these)",
    "<|im_start|>user\nHi there<|im_end|>\n",
    "text<|endoftext|>more",
    "<|im_start|><|im_end|><|endoftext|>",
    "<|im_start partial special",
    "<think>let me reason</think>",
    "a<think>b <think> c",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 math letters",
    "Mixture-of-Experts (MoE) routes each token to k experts.",
    "Γειά σου κόσμε, Ünïcödé façade",
    PROMPT,
]


def golden_encode(tok_dir, added):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    raw = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    info = {}
    chosen = None
    for cls in ("Qwen2Tokenizer", "PreTrainedTokenizerFast"):
        write_tokenizer_config(tok_dir, added, cls)
        hf = AutoTokenizer.from_pretrained(tok_dir)
        diffs = []
        for t in GOLDEN_TEXTS:
            a = hf(t)["input_ids"]
            b = raw.encode(t).ids
            da = hf.decode(a, skip_special_tokens=False)
            db = raw.decode(b, skip_special_tokens=False)
            if a != b or da != db:
                diffs.append({"text": t, "hf": a, "raw": b, "hf_dec": da, "raw_dec": db})
        info[cls] = {"loaded_as": type(hf).__name__, "n_diffs_vs_tokenizers": len(diffs),
                     "diffs": diffs[:5]}
        print(f"[tokenizer] tokenizer_class={cls} loads as {type(hf).__name__}; "
              f"{len(diffs)} texts differ from raw `tokenizers`")
        for d in diffs[:5]:
            print("   DIFF", json.dumps(d, ensure_ascii=False))
        if not diffs:
            chosen = cls
            break
    if chosen is None:
        chosen = "PreTrainedTokenizerFast"
        print("WARNING: every tokenizer class differs from raw tokenizers; keeping "
              "PreTrainedTokenizerFast and recording its output")
        write_tokenizer_config(tok_dir, added, chosen)
    hf = AutoTokenizer.from_pretrained(tok_dir)
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(tok_dir, "tokenizer.json"))
    rows = []
    for t in GOLDEN_TEXTS:
        ids = hf(t)["input_ids"]
        if fast(t)["input_ids"] != ids:
            print("WARNING: bare PreTrainedTokenizerFast differs on", repr(t))
        rows.append({"text": t, "ids": ids, "decoded": hf.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(tok_dir, "golden_encode.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1, ensure_ascii=False)
        f.write("\n")
    templ = hf.apply_chat_template(
        [{"role": "user", "content": "Explain mixture of experts to a five year old."}],
        tokenize=False, add_generation_prompt=True)
    assert templ == PROMPT, repr(templ)
    prompt_ids = hf(PROMPT)["input_ids"]
    info["chosen_tokenizer_class"] = chosen
    info["backend_pipeline"] = {
        "normalizer": str(hf.backend_tokenizer.normalizer),
        "pre_tokenizer": str(hf.backend_tokenizer.pre_tokenizer),
        "decoder": str(hf.backend_tokenizer.decoder),
    }
    return prompt_ids, len(hf), info


# ----------------------------------------------------------------------------------------
# Model weights
# ----------------------------------------------------------------------------------------

H, N_LAYERS, N_HEADS, N_KV, HEAD_DIM = 64, 3, 4, 2, 16
N_EXPERTS, TOP_K, MOE_I, DENSE_I = 8, 4, 32, 96
MLP_ONLY_LAYERS = [1]


def canonical_shapes(vocab):
    """Tensor names/shapes exactly as published Qwen3-MoE checkpoints (per-expert)."""
    s = {"model.embed_tokens.weight": (vocab, H)}
    for i in range(N_LAYERS):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = (H,)
        s[p + "post_attention_layernorm.weight"] = (H,)
        s[p + "self_attn.q_proj.weight"] = (N_HEADS * HEAD_DIM, H)
        s[p + "self_attn.k_proj.weight"] = (N_KV * HEAD_DIM, H)
        s[p + "self_attn.v_proj.weight"] = (N_KV * HEAD_DIM, H)
        s[p + "self_attn.o_proj.weight"] = (H, N_HEADS * HEAD_DIM)
        s[p + "self_attn.q_norm.weight"] = (HEAD_DIM,)
        s[p + "self_attn.k_norm.weight"] = (HEAD_DIM,)
        if i in MLP_ONLY_LAYERS:
            s[p + "mlp.gate_proj.weight"] = (DENSE_I, H)
            s[p + "mlp.up_proj.weight"] = (DENSE_I, H)
            s[p + "mlp.down_proj.weight"] = (H, DENSE_I)
        else:
            s[p + "mlp.gate.weight"] = (N_EXPERTS, H)
            for e in range(N_EXPERTS):
                s[p + f"mlp.experts.{e}.gate_proj.weight"] = (MOE_I, H)
                s[p + f"mlp.experts.{e}.up_proj.weight"] = (MOE_I, H)
                s[p + f"mlp.experts.{e}.down_proj.weight"] = (H, MOE_I)
    s["model.norm.weight"] = (H,)
    s["lm_head.weight"] = (vocab, H)
    return s


def make_weights(seed, vocab):
    """float32 master weights (not yet rounded). Scales chosen so routing/logits are peaked."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in sorted(canonical_shapes(vocab).items(), key=lambda kv: natural_key(kv[0])):
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * r
        elif "embed_tokens" in name:
            t = 1.0 * r
        elif name.endswith("mlp.gate.weight"):
            t = 0.35 * r
        elif name == "lm_head.weight":
            t = 0.3 * r
        else:
            t = 0.2 * r
        out[name] = t.contiguous()
    return out


def storage_dtype(name, mixed):
    if not mixed:
        return torch.bfloat16
    if name.endswith("norm.weight") or "embed_tokens" in name:
        return torch.float32
    if ".self_attn." in name and name.endswith("_proj.weight"):
        return torch.float16
    return torch.bfloat16


def round_weights(master, mixed):
    return {k: v.to(storage_dtype(k, mixed)).contiguous() for k, v in master.items()}


def make_config(vocab, ntok_vocab_eos):
    from transformers import Qwen3MoeConfig
    return Qwen3MoeConfig(
        vocab_size=vocab, hidden_size=H, intermediate_size=DENSE_I, num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS, num_key_value_heads=N_KV, head_dim=HEAD_DIM,
        hidden_act="silu", max_position_embeddings=4096, initializer_range=0.02,
        rms_norm_eps=1e-6, use_cache=True, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False, attention_dropout=0.0, decoder_sparse_step=1,
        moe_intermediate_size=MOE_I, num_experts_per_tok=TOP_K, num_experts=N_EXPERTS,
        norm_topk_prob=True, output_router_logits=False, router_aux_loss_coef=0.001,
        mlp_only_layers=list(MLP_ONLY_LAYERS), bos_token_id=0, eos_token_id=ntok_vocab_eos,
        pad_token_id=0, sliding_window=None, use_sliding_window=False, max_window_layers=N_LAYERS)


def save_st(tensors, path, metadata=None):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata=metadata if metadata is not None else {"format": "pt"})


def load_st(path):
    from safetensors.torch import load_file
    return load_file(path)


def load_model(model_dir, **kw):
    from transformers import Qwen3MoeForCausalLM
    try:
        model, info = Qwen3MoeForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager",
            experts_implementation="eager", output_loading_info=True, **kw)
    except (TypeError, ValueError) as e:
        print("  (from_pretrained without experts_implementation:", e, ")")
        model, info = Qwen3MoeForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager",
            output_loading_info=True, **kw)
    force_eager(model)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"loading {model_dir} was not clean: {bad}")
    model.eval()
    return model


def force_eager(model):
    for m in [model.config] + [mod.config for mod in model.modules() if hasattr(mod, "config")]:
        if hasattr(m, "_experts_implementation"):
            try:
                m._experts_implementation = "eager"
            except Exception as e:  # noqa: BLE001
                print("  cannot force eager experts:", e)
        if hasattr(m, "_attn_implementation") and m._attn_implementation != "eager":
            try:
                m._attn_implementation = "eager"
            except Exception as e:  # noqa: BLE001
                print("  cannot force eager attention:", e)


@torch.no_grad()
def run_golden(model, prompt_ids):
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    full = model(input_ids=ids, use_cache=False).logits[0].float().clone()
    # greedy decoding with the KV cache, recording the logits of each step
    out = model(input_ids=ids, use_cache=True)
    past = out.past_key_values
    step_logits = [out.logits[0, -1].float().clone()]
    greedy = [int(step_logits[-1].argmax())]
    for _ in range(N_GREEDY - 1):
        out = model(input_ids=torch.tensor([[greedy[-1]]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        step_logits.append(out.logits[0, -1].float().clone())
        greedy.append(int(step_logits[-1].argmax()))
    dec = torch.stack(step_logits)
    # cross-check decode-with-cache against one full forward without cache
    seq = torch.tensor([prompt_ids + greedy[:-1]])
    ref = model(input_ids=seq, use_cache=False).logits[0, len(prompt_ids) - 1:].float()
    chk = {"decode_vs_nocache_maxdiff": float((ref - dec).abs().max()),
           "prefill_vs_nocache_maxdiff": float((full[-1] - dec[0]).abs().max())}
    try:
        gen = model.generate(ids, max_new_tokens=N_GREEDY, do_sample=False, num_beams=1,
                             pad_token_id=0)[0, len(prompt_ids):].tolist()
        chk["generate_ids"] = gen
        chk["generate_agrees"] = gen == greedy[:len(gen)]
    except Exception as e:  # noqa: BLE001
        chk["generate_error"] = repr(e)
    return full, greedy, dec, chk


def residual_stream_hooks(model, rec):
    """Forward hooks recording the residual stream of one forward into rec (float32, batch
    row 0): "h0" the token embeddings, "h{i+1}" the output of decoder layer i (before any
    norm), "hn" after the final RMSNorm.  Returns the hooks, for the caller to remove."""
    def first(o):
        return o[0] if isinstance(o, (tuple, list)) else o

    m = model.model
    hooks = [m.embed_tokens.register_forward_hook(
        lambda mod, i, o: rec.__setitem__("h0", first(o)[0].float().clone()))]
    for li, layer in enumerate(m.layers):
        hooks.append(layer.register_forward_hook(
            lambda mod, i, o, li=li: rec.__setitem__(f"h{li + 1}", first(o)[0].float().clone())))
    hooks.append(m.norm.register_forward_hook(
        lambda mod, i, o: rec.__setitem__("hn", first(o)[0].float().clone())))
    return hooks


def stacked_residual_stream(rec, n_layers):
    """residual_stream_hooks' record as one tensor [n_layers + 2, T, H]."""
    return torch.stack([rec["h0"]] + [rec[f"h{i + 1}"] for i in range(n_layers)] + [rec["hn"]])


@torch.no_grad()
def intermediates(model, prompt_ids):
    """Residual stream and router decisions of one full (no cache) forward over the prompt.

    hidden_states [L+2, T, H]: 0 = token embeddings, i = output of decoder layer i-1
    (residual stream, before any norm), L+1 = after the final RMSNorm (input of lm_head).
    Router tensors are stacked over the MoE layers listed in router_layers (int32 [M]):
    router_logits [M, T, E] (x @ gate.weight^T, before softmax), router_topk_ids [M, T, k]
    (int32, torch.topk order: descending probability), router_topk_weights [M, T, k] (after
    softmax over all E, top-k and renormalisation).  Everything extra is 1-D or 3-D so that
    a loader keyed on 2-D float32 [rows, vocab] matrices never mistakes it for logits.
    """
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeTopKRouter
    rec = {}
    hooks = residual_stream_hooks(model, rec)
    m = model.model
    for li, layer in enumerate(m.layers):
        if isinstance(getattr(layer.mlp, "gate", None), Qwen3MoeTopKRouter):
            def rh(mod, i, o, li=li):
                logits, scores, idx = o
                rec[f"router_logits_layer{li}"] = logits.float().clone()
                rec[f"router_topk_ids_layer{li}"] = idx.to(torch.int32).clone()
                rec[f"router_topk_weights_layer{li}"] = scores.float().clone()
            hooks.append(layer.mlp.gate.register_forward_hook(rh))
    try:
        model(input_ids=torch.tensor([prompt_ids]), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    L = len(m.layers)
    out = {"hidden_states": stacked_residual_stream(rec, L).contiguous()}
    moe = [i for i in range(L) if f"router_logits_layer{i}" in rec]
    out["router_layers"] = torch.tensor(moe, dtype=torch.int32)
    for name in ("router_logits", "router_topk_ids", "router_topk_weights"):
        out[name] = torch.stack([rec[f"{name}_layer{i}"] for i in moe]).contiguous()
    return out


@torch.no_grad()
def router_margin(model, seq):
    """Smallest gap between the router logits of the last chosen (k-th) and the first
    rejected ((k+1)-th) expert, over all MoE layers and positions of `seq` (prompt + greedy
    tokens).  Softmax is monotonic, so this is the margin of the top-k decision; a tiny gap
    would let harmless float rounding flip an expert choice."""
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeTopKRouter
    k = model.config.num_experts_per_tok
    gaps, hooks = [], []
    for mod in model.modules():
        if isinstance(mod, Qwen3MoeTopKRouter):
            def h(m, i, o):
                pr = o[0].float().sort(-1, descending=True).values
                gaps.append(float((pr[:, k - 1] - pr[:, k]).min()))
            hooks.append(mod.register_forward_hook(h))
    try:
        model(input_ids=torch.tensor([seq]), use_cache=False)
    finally:
        for x in hooks:
            x.remove()
    return min(gaps)


def quality(full, greedy, full2, ntok, margins=None, dec=None):
    rel = float((full - full2).norm() / full.norm())
    counts = np.bincount(np.array(greedy), minlength=1)
    p = torch.softmax(full, -1).max(-1).values
    q = {"max_abs_logit": float(full.abs().max()), "rel_change_topk2": rel,
         "distinct_greedy": len(set(greedy)), "max_repeat": int(counts.max()),
         "greedy_all_in_tokenizer": all(t < ntok for t in greedy),
         "mean_top1_prob": float(p.mean())}
    if margins is not None:
        q["router_margin_topk"], q["router_margin_topk2"] = margins
    if dec is not None:
        top2 = dec.topk(2, -1).values
        q["greedy_logit_margin"] = float((top2[:, 0] - top2[:, 1]).min())
    q["ok"] = (q.get("router_margin_topk", 1) >= 2e-3 and q.get("router_margin_topk2", 1) >= 2e-3
               and q.get("greedy_logit_margin", 1) >= 0.02
               and q["distinct_greedy"] >= 4 and q["max_repeat"] <= 6 and rel >= 0.1
               and q["greedy_all_in_tokenizer"] and 3.0 <= q["max_abs_logit"] <= 60.0
               and q["mean_top1_prob"] >= 0.02)
    return q


def fused_layout(model, canon):
    """Find how transformers holds Qwen3-MoE experts in memory, by comparing values."""
    sd = model.state_dict()
    lay = {}
    keys = [k for k in sd if ".mlp.experts." in k]
    lay["model_expert_params"] = {k: list(sd[k].shape) for k in keys if ".layers.0." in k}
    gu = sd.get("model.layers.0.mlp.experts.gate_up_proj")
    dn = sd.get("model.layers.0.mlp.experts.down_proj")
    if gu is None or dn is None:
        lay["error"] = "no fused gate_up_proj/down_proj in state_dict: " + repr(keys[:6])
        return lay
    p = "model.layers.0.mlp.experts."
    gate = torch.stack([canon[p + f"{e}.gate_proj.weight"].float() for e in range(N_EXPERTS)])
    up = torch.stack([canon[p + f"{e}.up_proj.weight"].float() for e in range(N_EXPERTS)])
    down = torch.stack([canon[p + f"{e}.down_proj.weight"].float() for e in range(N_EXPERTS)])
    cands = {
        "[E, 2I, H] = cat(gate, up) along dim 1": torch.cat([gate, up], 1),
        "[E, 2I, H] = cat(up, gate) along dim 1": torch.cat([up, gate], 1),
        "[E, H, 2I] = cat(gate^T, up^T) along dim 2": torch.cat([gate, up], 1).transpose(1, 2),
        "[E, H, 2I] = cat(up^T, gate^T) along dim 2": torch.cat([up, gate], 1).transpose(1, 2),
        "[E, 2I, H] interleaved gate/up rows": torch.stack([gate, up], 2).reshape(N_EXPERTS, -1, H),
    }
    lay["gate_up_proj"] = [k for k, v in cands.items() if v.shape == gu.shape and torch.equal(v, gu.float())]
    dc = {"[E, H, I] = stack(down_proj.weight)": down,
          "[E, I, H] = stack(down_proj.weight^T)": down.transpose(1, 2)}
    lay["down_proj"] = [k for k, v in dc.items() if v.shape == dn.shape and torch.equal(v, dn.float())]
    rg = [k for k in sd if k.startswith("model.layers.0.mlp.") and ".experts." not in k]
    lay["router_params"] = {k: list(sd[k].shape) for k in rg}
    return lay


def file_sizes(root):
    rows = []
    for d, _, fs in os.walk(root):
        for f in sorted(fs):
            p = os.path.join(d, f)
            rows.append((os.path.relpath(p, root), os.path.getsize(p)))
    return sorted(rows)


def print_file_sizes(root, after_total=""):
    """Every file under root with its size, then the total (followed by after_total)."""
    tot = 0
    for p, sz in file_sizes(root):
        print(f"{sz:>10}  {p}")
        tot += sz
    print(f"{tot:>10}  TOTAL{after_total}")


def finish_output(out, work, info, info_file, json_default=None):
    """Write info to out/info_file, remove the scratch directory, make every file of out
    world-readable, and print the summary of file sizes."""
    with open(os.path.join(out, info_file), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False, default=json_default)
        f.write("\n")
    shutil.rmtree(work)
    for d, _, fs in os.walk(out):
        for f in fs:
            os.chmod(os.path.join(d, f), 0o644)
    print("\n==== summary ====")
    print_file_sizes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    import safetensors
    import tokenizers
    import transformers
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    info = {"versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__,
                         "safetensors": safetensors.__version__, "numpy": np.__version__},
            "command": "python3 tests/reference/make_reference.py --out DIR"}
    print("versions:", info["versions"])

    # --- tokenizer -------------------------------------------------------------------
    tok_dir = os.path.join(out, "tokenizer")
    ntok, added = build_tokenizer(tok_dir)
    prompt_ids, ntok2, tinfo = golden_encode(tok_dir, added)
    assert ntok == ntok2, (ntok, ntok2)
    im_end = SPECIAL_TOKENS.index("<|im_end|>")
    vocab = (ntok + 63) // 64 * 64
    info["tokenizer"] = {"size_with_added": ntok, "model_vocab": vocab,
                         "prompt_len": len(prompt_ids), "prompt_ids": prompt_ids, **tinfo}
    print(f"[tokenizer] {ntok} tokens (model vocab {vocab}); prompt -> {len(prompt_ids)} ids")
    tok_files = ["tokenizer.json", "tokenizer_config.json"]

    def copy_tok(dst):
        for f in tok_files:
            shutil.copy(os.path.join(tok_dir, f), os.path.join(dst, f))

    config = make_config(vocab, im_end)
    work = tempfile.mkdtemp()

    def build(seed, mixed, target):
        """Write per-expert checkpoint + v5 config to target; return goldens & models."""
        os.makedirs(target, exist_ok=True)
        canon = round_weights(make_weights(seed, vocab), mixed)
        config.save_pretrained(target)
        cpath = os.path.join(target, "config.json")
        with open(cpath) as f:
            cj = json.load(f)
        cj["architectures"] = ["Qwen3MoeForCausalLM"]
        cj["dtype"] = "bfloat16"
        with open(cpath, "w") as f:
            json.dump(cj, f, indent=2, sort_keys=True)
            f.write("\n")
        save_st(canon, os.path.join(target, "model.safetensors"))
        model = load_model(target)
        full, greedy, dec, chk = run_golden(model, prompt_ids)
        model2 = load_model(target, num_experts_per_tok=2)
        assert model2.config.num_experts_per_tok == 2
        full2 = model2(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0].float()
        seq = prompt_ids + greedy[:-1]
        q = quality(full, greedy, full2.detach(), ntok,
                    (router_margin(model, seq), router_margin(model2, seq)), dec)
        return canon, model, full, greedy, dec, full2.detach(), chk, q

    def pick(seed0, mixed, name):
        for s in range(seed0, seed0 + 200):
            tgt = os.path.join(work, f"{name}_{s}")
            res = build(s, mixed, tgt)
            print(f"[{name}] seed {s}: {res[-1]}")
            if res[-1]["ok"]:
                return s, tgt, res
        raise RuntimeError("no seed met the quality criteria")

    def write_golden(path, full, greedy, dec, full2, inter):
        t = {"input_ids": torch.tensor(prompt_ids, dtype=torch.int32),
             "logits": full.contiguous(),
             "greedy_ids": torch.tensor(greedy, dtype=torch.int32),
             "logits_decode": dec.contiguous()}
        if full2 is not None:
            t["logits_topk2"] = full2.contiguous()
        t.update(inter)
        save_st(t, path, {"format": "pt", "prompt": PROMPT})

    # --- qwen3_moe_tiny ----------------------------------------------------------------
    seed, src, (canon, model, full, greedy, dec, full2, chk, q) = pick(args.seed, False, "tiny")
    tiny = os.path.join(out, "qwen3_moe_tiny")
    os.makedirs(tiny)
    print("[tiny] loaded model expert implementation:",
          getattr(model.config, "_experts_implementation", None),
          "attn:", getattr(model.config, "_attn_implementation", None))
    print(model)
    lay = fused_layout(model, canon)
    print("[tiny] fused layout:", json.dumps(lay, indent=1))
    # what does save_pretrained write?
    sp = os.path.join(work, "save_pretrained")
    # save a copy: .to(bfloat16) would also round the RoPE inv_freq buffer of `model`
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(sp)
    sp_files = sorted(os.listdir(sp))
    sp_sd = {}
    for f in sp_files:
        if f.endswith(".safetensors"):
            sp_sd.update(load_st(os.path.join(sp, f)))
    same_names = set(sp_sd) == set(canon)
    same_vals = same_names and all(torch.equal(sp_sd[k], canon[k]) for k in canon)
    spi = {"files": sp_files, "same_names_as_per_expert": same_names, "same_values": same_vals,
           "expert_names_layer0": sorted(k for k in sp_sd if ".layers.0.mlp.experts" in k)[:6],
           "dtypes": sorted({str(v.dtype) for v in sp_sd.values()})}
    print("[tiny] save_pretrained wrote:", json.dumps(spi, indent=1))
    if same_vals and "model.safetensors" in sp_files:
        shutil.copy(os.path.join(sp, "model.safetensors"), os.path.join(tiny, "model.safetensors"))
        spi["dataset_file"] = "written by save_pretrained"
    else:
        shutil.copy(os.path.join(src, "model.safetensors"), os.path.join(tiny, "model.safetensors"))
        spi["dataset_file"] = "written by safetensors.save_file with per-expert names"
    for f in ("config.json", "generation_config.json"):
        if os.path.exists(os.path.join(sp, f)):
            shutil.copy(os.path.join(sp, f), os.path.join(tiny, f))
        else:
            shutil.copy(os.path.join(src, f), os.path.join(tiny, f))
    copy_tok(tiny)
    tint = intermediates(model, prompt_ids)
    with torch.no_grad():
        chk["intermediates_lm_head_maxdiff"] = float(
            (model.lm_head(tint["hidden_states"][-1]) - full).abs().max())
    assert chk["intermediates_lm_head_maxdiff"] < 1e-4, chk
    write_golden(os.path.join(tiny, "golden.safetensors"), full, greedy, dec, full2, tint)
    # reload the dataset directory itself and check it reproduces the golden bit for bit
    m_chk = load_model(tiny)
    f_chk = m_chk(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0].detach()
    chk["dataset_reload_maxdiff"] = float((f_chk - full).abs().max())
    info["qwen3_moe_tiny"] = {"seed": seed, "quality": q, "checks": chk, "greedy_ids": greedy,
                              "greedy_text": None, "save_pretrained": spi,
                              "fused_layout": lay}
    from transformers import AutoTokenizer
    hf_tok = AutoTokenizer.from_pretrained(tiny)
    info["qwen3_moe_tiny"]["greedy_text"] = hf_tok.decode(greedy, skip_special_tokens=False)
    print("[tiny] checks:", chk)

    # --- qwen3_moe_sharded_legacy ----------------------------------------------------------
    leg = os.path.join(out, "qwen3_moe_sharded_legacy")
    os.makedirs(leg)
    fsd = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    names = sorted(fsd, key=lambda k: (k == "lm_head.weight", natural_key(k)))
    sizes = [fsd[k].numel() * fsd[k].element_size() for k in names]
    total = sum(sizes)
    weight_map, shards, acc = {}, [[], [], []], 0
    for k, sz in zip(names, sizes):
        idx = min(2, int(3 * acc / total))
        shards[idx].append(k)
        acc += sz
    for i, ks in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-00003.safetensors"
        save_st({k: fsd[k] for k in ks}, os.path.join(leg, fn))
        for k in ks:
            weight_map[k] = fn
    with open(os.path.join(leg, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    legacy_cfg = {
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": 0, "decoder_sparse_step": 1,
        "eos_token_id": im_end, "head_dim": HEAD_DIM, "hidden_act": "silu", "hidden_size": H,
        "initializer_range": 0.02, "intermediate_size": DENSE_I, "max_position_embeddings": 4096,
        "max_window_layers": N_LAYERS, "mlp_only_layers": list(MLP_ONLY_LAYERS),
        "model_type": "qwen3_moe", "moe_intermediate_size": MOE_I, "norm_topk_prob": True,
        "num_attention_heads": N_HEADS, "num_experts": N_EXPERTS, "num_experts_per_tok": TOP_K,
        "num_hidden_layers": N_LAYERS, "num_key_value_heads": N_KV,
        "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": vocab}
    with open(os.path.join(leg, "config.json"), "w") as f:
        json.dump(legacy_cfg, f, indent=2)
        f.write("\n")
    copy_tok(leg)
    write_legacy_merges(os.path.join(tok_dir, "tokenizer.json"), os.path.join(leg, "tokenizer.json"))
    from tokenizers import Tokenizer
    raw_leg = Tokenizer.from_file(os.path.join(leg, "tokenizer.json"))
    hf_leg = AutoTokenizer.from_pretrained(leg)
    with open(os.path.join(tok_dir, "golden_encode.json"), encoding="utf-8") as f:
        for row in json.load(f):
            assert raw_leg.encode(row["text"]).ids == row["ids"], row
            assert hf_leg(row["text"])["input_ids"] == row["ids"], row
    print("[legacy] string-form merges encode every golden text identically")
    shutil.copy(os.path.join(tiny, "golden.safetensors"), os.path.join(leg, "golden.safetensors"))
    # verify 1: the fused tensors loaded straight into the model's state dict
    from transformers import Qwen3MoeForCausalLM
    m_sd = Qwen3MoeForCausalLM(load_model(tiny).config).float().eval()
    force_eager(m_sd)
    missing, unexpected = m_sd.load_state_dict({k: v.float() for k, v in fsd.items()}, strict=True)
    with torch.no_grad():
        f_sd = m_sd(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
    lchk = {"load_state_dict_maxdiff": float((f_sd - full).abs().max())}
    # verify 2: from_pretrained on the legacy directory (legacy config + fused shards)
    try:
        m_leg = load_model(leg)
        with torch.no_grad():
            f_leg = m_leg(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
        lchk["from_pretrained_maxdiff"] = float((f_leg - full).abs().max())
        lchk["loaded_rope"] = str(getattr(m_leg.config, "rope_parameters", None))
        lchk["loaded_eos"] = m_leg.config.eos_token_id
    except Exception as e:  # noqa: BLE001
        lchk["from_pretrained_error"] = repr(e)
    print("[legacy] checks:", lchk)
    assert lchk["load_state_dict_maxdiff"] == 0.0, lchk
    info["qwen3_moe_sharded_legacy"] = {
        "shards": {f"model-{i + 1:05d}-of-00003.safetensors": len(ks) for i, ks in enumerate(shards)},
        "total_size": total, "checks": lchk,
        "fused_tensors": {k: [str(fsd[k].dtype), list(fsd[k].shape)] for k in names
                          if ".mlp.experts." in k}}

    # --- qwen3_moe_mixed_dtype ---------------------------------------------------------
    mseed, msrc, (mcanon, mmodel, mfull, mgreedy, mdec, mfull2, mchk, mq) = pick(
        args.seed + 1000, True, "mixed")
    mint = intermediates(mmodel, prompt_ids)
    mix = os.path.join(out, "qwen3_moe_mixed_dtype")
    os.makedirs(mix)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(msrc, f), os.path.join(mix, f))
    if os.path.exists(os.path.join(tiny, "generation_config.json")):
        shutil.copy(os.path.join(tiny, "generation_config.json"), mix)
    copy_tok(mix)
    write_golden(os.path.join(mix, "golden.safetensors"), mfull, mgreedy, mdec, None, mint)
    dts = {}
    for k, v in mcanon.items():
        dts.setdefault(str(v.dtype), 0)
        dts[str(v.dtype)] += 1
    info["qwen3_moe_mixed_dtype"] = {"seed": mseed, "quality": mq, "checks": mchk,
                                     "greedy_ids": mgreedy, "dtype_counts": dts}
    print("[mixed] checks:", mchk, "dtypes:", dts)

    # --- summary ---------------------------------------------------------------------
    finish_output(out, work, info, "reference_info.json")
    for name, fl, fl2, gr in (("tiny", full, full2, greedy), ("mixed", mfull, mfull2, mgreedy)):
        print(f"{name}: max|logit| {float(fl.abs().max()):.3f}  rel change topk2 "
              f"{float((fl - fl2).norm() / fl.norm()):.3f}  greedy {gr}")
    print("tiny greedy text:", repr(info["qwen3_moe_tiny"]["greedy_text"]))


if __name__ == "__main__":
    main()
