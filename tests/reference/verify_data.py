#!/usr/bin/env python3
"""Check the reference data in tests/data with nothing but Python and numpy.

    python3 tests/reference/verify_data.py [DATA_DIR]     (default: tests/data)

* parses every .safetensors file by hand (header, dtypes, offsets, sizes);
* checks config.json / index.json / tokenizer files for the fields the C++ side relies on;
* checks that the legacy fused experts hold the same numbers as the per-expert tensors;
* re-computes every golden with an independent numpy float64 implementation of Qwen3-MoE
  (the same maths an implementer must reproduce) and compares;
* does the same for Qwen3.5-MoE, Qwen3-Next, DeepSeek-V3 (bf16 and FP8), Kimi K2, Mixtral
  and gpt-oss (bf16 and MXFP4) through verify_archs.py.

Exits non-zero on the first failure.  Needs no torch, transformers or safetensors.
"""

import json
import os
import struct
import sys

import numpy as np

DTYPES = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I32": 4, "I64": 8, "U8": 1, "I8": 1,
          "BOOL": 1, "U16": 2, "I16": 2, "F8_E4M3": 1}


def _e4m3fn_table():
    """float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no inf; S.1111.111 is NaN."""
    t = np.zeros(256)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e, m = (b >> 3) & 0xF, b & 7
        if e == 15 and m == 7:
            t[b] = np.nan
        elif e == 0:
            t[b] = s * (m / 8.0) * 2.0 ** -6
        else:
            t[b] = s * (1.0 + m / 8.0) * 2.0 ** (e - 7)
    return t


E4M3FN = _e4m3fn_table()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_safetensors(path):
    """Return (metadata, {name: (dtype, shape, float64/int array)}) after strict checks."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        fail(f"{path}: too short")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    spans = []
    out = {}
    for name, h in header.items():
        dt, shape, (b, e) = h["dtype"], h["shape"], h["data_offsets"]
        if dt not in DTYPES:
            fail(f"{path}:{name}: unknown dtype {dt}")
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * DTYPES[dt]:
            fail(f"{path}:{name}: {e - b} bytes for {dt}{shape}")
        spans.append((b, e, name))
        buf = data[b:e]
        if dt == "BF16":
            arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(buf, "<f2")
        elif dt == "F32":
            arr = np.frombuffer(buf, "<f4")
        elif dt == "I32":
            arr = np.frombuffer(buf, "<i4")
        elif dt == "I64":
            arr = np.frombuffer(buf, "<i8")
        elif dt == "U8":
            arr = np.frombuffer(buf, np.uint8)
        elif dt == "F8_E4M3":
            arr = E4M3FN[np.frombuffer(buf, np.uint8)]
        else:
            fail(f"{path}:{name}: dtype {dt} not expected here")
        arr = arr.reshape(shape)
        out[name] = (dt, list(shape), arr.astype(np.float64) if dt[0] in "BF" else arr.astype(np.int64))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            fail(f"{path}: gap/overlap before {name} ({b} != {pos})")
        pos = e
    if pos != len(data):
        fail(f"{path}: data section {len(data)} bytes, tensors cover {pos}")
    return meta, out


def load_weights(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(idx):
        index = json.load(open(idx))
        wm = index["weight_map"]
        total = 0
        for fn in sorted(set(wm.values())):
            _, t = read_safetensors(os.path.join(model_dir, fn))
            for k, v in t.items():
                if wm.get(k) != fn:
                    fail(f"{fn}:{k} not mapped to its shard in the index")
                total += v[2].size * DTYPES[v[0]]
            tensors.update(t)
        if set(wm) != set(tensors):
            fail("index weight_map and shard contents differ")
        if index["metadata"]["total_size"] != total:
            fail(f"index total_size {index['metadata']['total_size']} != {total}")
    else:
        _, tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return tensors


class Cfg:
    def __init__(self, path):
        c = json.load(open(path))
        self.raw = c
        self.H = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.nh = c["num_attention_heads"]
        self.nkv = c["num_key_value_heads"]
        self.hd = c.get("head_dim") or self.H // self.nh
        # transformers 5 writes num_local_experts; older configs say num_experts
        self.E = c.get("num_experts", c.get("num_local_experts"))
        self.k = c["num_experts_per_tok"]
        self.norm_topk = c["norm_topk_prob"]
        self.eps = c["rms_norm_eps"]
        rp = c.get("rope_parameters") or {}
        self.theta = rp.get("rope_theta", c.get("rope_theta"))
        self.mlp_only = c.get("mlp_only_layers") or []
        self.sparse_step = c.get("decoder_sparse_step", 1)
        self.vocab = c["vocab_size"]

    def is_moe(self, i):
        return i not in self.mlp_only and self.E > 0 and (i + 1) % self.sparse_step == 0


def rmsnorm(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def silu(x):
    return x / (1.0 + np.exp(-x))


def expert_weights(W, p, e, I):
    """(gate [I,H], up [I,H], down [H,I]) of expert e, from per-expert or fused tensors."""
    if p + f"mlp.experts.{e}.gate_proj.weight" in W:
        return (W[p + f"mlp.experts.{e}.gate_proj.weight"], W[p + f"mlp.experts.{e}.up_proj.weight"],
                W[p + f"mlp.experts.{e}.down_proj.weight"])
    gu = W[p + "mlp.experts.gate_up_proj"][e]          # [2I, H]: rows 0..I-1 gate, I..2I-1 up
    return gu[:I], gu[I:], W[p + "mlp.experts.down_proj"][e]  # down: [H, I]


def forward(cfg, W, ids, top_k=None, trace=None):
    """Full-sequence forward, float64. Returns logits [T, vocab]."""
    k = top_k or cfg.k
    T = len(ids)
    h = W["model.embed_tokens.weight"][ids]
    if trace is not None:
        trace["hidden"] = [h.copy()]
    pos = np.arange(T, dtype=np.float64)
    inv = 1.0 / cfg.theta ** (np.arange(0, cfg.hd, 2, dtype=np.float64) / cfg.hd)
    fr = pos[:, None] * inv[None, :]
    emb = np.concatenate([fr, fr], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]

    def rope(x):  # x [T, heads, hd]; rotate_half style (first half / second half)
        x1, x2 = x[..., :cfg.hd // 2], x[..., cfg.hd // 2:]
        return x * cos + np.concatenate([-x2, x1], -1) * sin

    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg.L):
        p = f"model.layers.{i}."
        x = rmsnorm(h, W[p + "input_layernorm.weight"], cfg.eps)
        q = (x @ W[p + "self_attn.q_proj.weight"].T).reshape(T, cfg.nh, cfg.hd)
        kk = (x @ W[p + "self_attn.k_proj.weight"].T).reshape(T, cfg.nkv, cfg.hd)
        v = (x @ W[p + "self_attn.v_proj.weight"].T).reshape(T, cfg.nkv, cfg.hd)
        q = rope(rmsnorm(q, W[p + "self_attn.q_norm.weight"], cfg.eps))   # per-head norm, then RoPE
        kk = rope(rmsnorm(kk, W[p + "self_attn.k_norm.weight"], cfg.eps))
        g = cfg.nh // cfg.nkv
        att = np.zeros((T, cfg.nh, cfg.hd))
        for hh in range(cfg.nh):
            s = q[:, hh] @ kk[:, hh // g].T * cfg.hd ** -0.5 + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            att[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, hh // g]
        h = h + att.reshape(T, -1) @ W[p + "self_attn.o_proj.weight"].T
        x = rmsnorm(h, W[p + "post_attention_layernorm.weight"], cfg.eps)
        if cfg.is_moe(i):
            logits = x @ W[p + "mlp.gate.weight"].T                     # [T, E]
            pr = np.exp(logits - logits.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)                              # softmax over ALL experts
            top = np.argsort(-pr, -1, kind="stable")[:, :k]
            wt = np.take_along_axis(pr, top, -1)
            if cfg.norm_topk:
                wt = wt / wt.sum(-1, keepdims=True)                      # renormalise the k weights
            if trace is not None:
                trace[f"router_logits_layer{i}"] = logits
                trace[f"router_topk_ids_layer{i}"] = top
                trace[f"router_topk_weights_layer{i}"] = wt
            I = W[p + "mlp.experts.down_proj"].shape[2] if p + "mlp.experts.down_proj" in W else \
                W[p + "mlp.experts.0.down_proj.weight"].shape[1]
            y = np.zeros_like(x)
            for t in range(T):
                for j in range(k):
                    gw, uw, dw = expert_weights(W, p, int(top[t, j]), I)
                    y[t] += wt[t, j] * (dw @ (silu(gw @ x[t]) * (uw @ x[t])))
        else:
            y = (silu(x @ W[p + "mlp.gate_proj.weight"].T) * (x @ W[p + "mlp.up_proj.weight"].T)) \
                @ W[p + "mlp.down_proj.weight"].T
        h = h + y
        if trace is not None:
            trace["hidden"].append(h.copy())
    h = rmsnorm(h, W["model.norm.weight"], cfg.eps)
    if trace is not None:
        trace["hidden"].append(h.copy())
    return h @ W["lm_head.weight"].T


def close(name, a, b, tol):
    d = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
    scale = float(np.abs(b).max())
    print(f"   {name:<34} max|diff| {d:.2e} (max|ref| {scale:.2f})")
    if not d <= tol:
        fail(f"{name}: max diff {d} > {tol}")


def check_model(d, tok_prompt_ids, ntok, per_expert_ref=None):
    print(f"== {os.path.basename(d)}")
    cfg = Cfg(os.path.join(d, "config.json"))
    W = {k: v[2] for k, v in load_weights(d).items()}
    dt = {k: v[0] for k, v in load_weights(d).items()}
    if cfg.vocab % 64 or cfg.vocab < ntok:
        fail(f"vocab {cfg.vocab} vs tokenizer {ntok}")
    if cfg.raw.get("eos_token_id") != 2:
        fail("eos_token_id should be <|im_end|> = 2")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if not os.path.exists(os.path.join(d, f)):
            fail(f"{d}: missing {f}")
    meta, G = read_safetensors(os.path.join(d, "golden.safetensors"))
    G = {k: v[2] for k, v in G.items()}
    ids = G["input_ids"].tolist()
    if ids != tok_prompt_ids:
        fail("golden input_ids != tokenizer encoding of the prompt")
    T, V = G["logits"].shape
    assert T == len(ids) and V == cfg.vocab
    assert G["logits_decode"].shape == (16, V) and G["greedy_ids"].shape == (16,)
    if not (G["logits_decode"].argmax(-1) == G["greedy_ids"]).all():
        fail("greedy_ids != argmax(logits_decode)")
    close("logits_decode[0] vs logits[-1]", G["logits_decode"][0], G["logits"][-1], 1e-4)
    if per_expert_ref is not None:  # legacy: fused tensors must be the per-expert ones, bit for bit
        for i in range(cfg.L):
            p = f"model.layers.{i}."
            if not cfg.is_moe(i):
                continue
            gu, dn = W[p + "mlp.experts.gate_up_proj"], W[p + "mlp.experts.down_proj"]
            I = dn.shape[2]
            assert gu.shape == (cfg.E, 2 * I, cfg.H) and dn.shape == (cfg.E, cfg.H, I)
            for e in range(cfg.E):
                r = per_expert_ref
                if not (np.array_equal(gu[e, :I], r[p + f"mlp.experts.{e}.gate_proj.weight"])
                        and np.array_equal(gu[e, I:], r[p + f"mlp.experts.{e}.up_proj.weight"])
                        and np.array_equal(dn[e], r[p + f"mlp.experts.{e}.down_proj.weight"])):
                    fail(f"layer {i} expert {e}: fused tensors differ from per-expert ones")
        others = [k for k in W if ".mlp.experts." not in k]
        for k in others:
            if not np.array_equal(W[k], per_expert_ref[k]):
                fail(f"{k} differs from qwen3_moe_tiny")
        print("   fused experts == per-expert tensors of qwen3_moe_tiny (bitwise)")
    print("   dtypes:", sorted({(v, sum(1 for x in dt.values() if x == v)) for v in dt.values()}))
    tr = {}
    logits = forward(cfg, W, ids, trace=tr)
    close("logits (numpy float64 model)", logits, G["logits"], 2e-3)
    if "hidden_states" in G:
        close("hidden_states", np.stack(tr["hidden"]), G["hidden_states"], 2e-3)
        moe = G["router_layers"].tolist()
        if moe != [i for i in range(cfg.L) if cfg.is_moe(i)]:
            fail(f"router_layers {moe}")
        for k in ("router_logits", "router_topk_ids", "router_topk_weights"):
            mine = np.stack([tr[f"{k}_layer{i}"] for i in moe])
            if k == "router_topk_ids":
                if not np.array_equal(mine, G[k]):
                    fail(f"{k} differs")
                print(f"   {k:<34} equal")
            else:
                close(k, mine, G[k], 2e-3)
    for k, v in G.items():  # only logits-like matrices may be 2-D float32
        if v.ndim == 2 and k not in ("logits", "logits_topk2", "logits_decode"):
            fail(f"unexpected 2-D tensor {k} in golden")
    if "logits_topk2" in G:
        close("logits_topk2", forward(cfg, W, ids, top_k=2), G["logits_topk2"], 2e-3)
        rel = np.linalg.norm(G["logits"] - G["logits_topk2"]) / np.linalg.norm(G["logits"])
        print(f"   relative change top-4 -> top-2: {rel:.3f}")
    seq = ids + G["greedy_ids"].tolist()[:-1]
    dec = forward(cfg, W, seq)[len(ids) - 1:]
    close("logits_decode", dec, G["logits_decode"], 2e-3)
    print("   greedy_ids", G["greedy_ids"].tolist())
    return W


def check_tokenizer(d):
    print("== tokenizer")
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
    assert tj["model"]["type"] == "BPE"
    assert tj["normalizer"]["type"] == "NFC"
    pt = tj["pre_tokenizer"]
    assert pt["type"] == "Sequence" and [p["type"] for p in pt["pretokenizers"]] == ["Split", "ByteLevel"]
    assert pt["pretokenizers"][0]["behavior"] == "Isolated"
    assert tj["decoder"]["type"] == "ByteLevel"
    added = {a["id"]: a for a in tj["added_tokens"]}
    for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]):
        assert added[i]["content"] == t and added[i]["special"], added[i]
    nonspecial = [a for a in added.values() if not a["special"]]
    assert len(nonspecial) == 1, nonspecial
    vocab = tj["model"]["vocab"]
    n = max(max(vocab.values()), max(added)) + 1
    assert tc["eos_token"] == "<|im_end|>" and tc["pad_token"] == "<|endoftext|>" and tc["bos_token"] is None
    gold = json.load(open(os.path.join(d, "golden_encode.json"), encoding="utf-8"))
    for row in gold:
        assert set(row) == {"text", "ids", "decoded"}
        assert all(0 <= i < n for i in row["ids"]), row
    print(f"   {n} tokens, {len(tj['model']['merges'])} merges, {len(gold)} golden texts")
    return n, gold[-1]["ids"]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data")
    ntok, prompt_ids = check_tokenizer(os.path.join(root, "tokenizer"))
    ref = json.load(open(os.path.join(root, "tokenizer", "tokenizer.json"), encoding="utf-8"))
    for sub in ("qwen3_moe_tiny", "qwen3_moe_sharded_legacy", "qwen3_moe_mixed_dtype"):
        f = "tokenizer_config.json"
        if open(os.path.join(root, sub, f), "rb").read() != open(os.path.join(root, "tokenizer", f), "rb").read():
            fail(f"{sub}/{f} differs from tokenizer/{f}")
        tj = json.load(open(os.path.join(root, sub, "tokenizer.json"), encoding="utf-8"))
        if sub == "qwen3_moe_sharded_legacy":  # merges as "a b" strings instead of [a, b] pairs
            if not all(isinstance(m, str) for m in tj["model"]["merges"]):
                fail("legacy tokenizer.json should hold string merges")
            tj["model"]["merges"] = [m.split(" ") for m in tj["model"]["merges"]]
        if tj != ref:
            fail(f"{sub}/tokenizer.json differs from tokenizer/tokenizer.json")
    W = check_model(os.path.join(root, "qwen3_moe_tiny"), prompt_ids, ntok)
    leg = os.path.join(root, "qwen3_moe_sharded_legacy")
    c = json.load(open(os.path.join(leg, "config.json")))
    assert "rope_parameters" not in c and c["rope_theta"] == 1e6 and c["rope_scaling"] is None
    assert "num_experts" in c
    check_model(leg, prompt_ids, ntok, per_expert_ref=W)
    mix = os.path.join(root, "qwen3_moe_mixed_dtype")
    _, t = read_safetensors(os.path.join(mix, "model.safetensors"))
    for k, (dt, _, _) in t.items():
        want = ("F32" if k.endswith("norm.weight") or "embed_tokens" in k else
                "F16" if ".self_attn." in k and k.endswith("_proj.weight") else "BF16")
        if dt != want:
            fail(f"mixed: {k} is {dt}, expected {want}")
    check_model(mix, prompt_ids, ntok)
    # the other architectures (make_reference_archs.py); independent numpy models in verify_archs.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import verify_archs
    verify_archs.check_all(root, prompt_ids, ntok)
    print("ALL OK")


if __name__ == "__main__":
    main()
