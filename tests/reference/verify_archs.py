"""Independent numpy (float64) models of the non-Qwen3-MoE reference datasets.

Called by verify_data.py.  Every forward here is written from the README's description of
the reference (transformers 5.17), not from transformers' code paths, and must reproduce
the goldens that transformers computed.  Needs Python 3 + numpy only.
"""

import json
import math
import os

import numpy as np

import verify_data as vd

TOL = 2e-3
FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


# ----------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------

def rms(x, w, eps, plus_one=False):
    y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return y * ((1.0 + w) if plus_one else w)


def embed(W, ids):
    """The token embeddings, and the trace that every forward below fills (the hidden state
    after the embeddings and after each layer; each sparse layer's routed expert ids)."""
    h = W["model.embed_tokens.weight"][ids]
    return h, {"hidden": [h.copy()], "router_ids": {}}


def final_logits(h, W, eps, tr, plus_one=False):
    """The final norm (traced) and the LM head: (logits, trace)."""
    h = rms(h, W["model.norm.weight"], eps, plus_one)
    tr["hidden"].append(h.copy())
    return h @ W["lm_head.weight"].T, tr


def silu(x):
    return x / (1.0 + np.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softplus(x):
    return np.logaddexp(0.0, x)


def rope_half(x, ang):
    """NeoX / rotate_half: pairs (i, i + d/2) rotated by ang[:, i]; x [T, heads, d], ang [T, d/2]."""
    d = x.shape[-1] // 2
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :d], x[..., d:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def rope_interleaved(x, ang):
    """GPT-J / DeepSeek: pairs (2i, 2i + 1) rotated by ang[:, i] (output kept interleaved)."""
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
    out[..., 1::2] = x[..., 1::2] * c + x[..., 0::2] * s
    return out


def attention(q, k, v, scale, window=None, sinks=None):
    """q [T, nh, d], k [T, nkv, d], v [T, nkv, dv]; causal, optional sliding window and sinks."""
    T, nh = q.shape[:2]
    g = nh // k.shape[1]
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = j <= i
    if window:
        allowed &= j > i - window
    out = np.zeros((T, nh, v.shape[-1]))
    for h in range(nh):
        s = q[:, h] @ k[:, h // g].T * scale
        s = np.where(allowed, s, -np.inf)
        if sinks is not None:
            s = np.concatenate([s, np.full((T, 1), sinks[h])], 1)
        p = softmax(s)
        if sinks is not None:
            p = p[:, :-1]
        out[:, h] = p @ v[:, h // g]
    return out


def get_mscale(scale, m=1.0):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def rope_params(c):
    """(rope dict) from a transformers-5 config (rope_parameters) or a legacy one."""
    rp = dict(c.get("rope_parameters") or {})
    if not rp:
        rs = dict(c.get("rope_scaling") or {})
        rp = rs
        rp["rope_type"] = rs.get("rope_type", rs.get("type", "default"))
    rp.setdefault("rope_theta", c.get("rope_theta"))
    if "partial_rotary_factor" not in rp and c.get("partial_rotary_factor") is not None:
        rp["partial_rotary_factor"] = c["partial_rotary_factor"]
    if rp["rope_type"] == "yarn":
        rp.setdefault("original_max_position_embeddings", c.get("max_position_embeddings"))
    return rp


def inv_freq(rp, dim):
    """(inv_freq [dim/2], attention_factor) for default and YaRN RoPE."""
    base = float(rp["rope_theta"])
    pos = base ** (np.arange(0, dim, 2) / dim)
    if rp["rope_type"] == "default":
        return 1.0 / pos, 1.0
    assert rp["rope_type"] == "yarn", rp
    factor = float(rp["factor"])
    orig = rp["original_max_position_embeddings"]
    ms, msa = rp.get("mscale"), rp.get("mscale_all_dim")
    att = rp.get("attention_factor")
    if att is None:
        att = get_mscale(factor, ms) / get_mscale(factor, msa) if (ms and msa) else get_mscale(factor)
    bf, bs = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1

    def corr(nrot):
        return dim * math.log(orig / (nrot * 2 * math.pi)) / (2 * math.log(base))
    low, high = corr(bf), corr(bs)
    if rp.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2) - low) / (high - low), 0, 1)
    extrap = 1.0 - ramp
    inv = (1.0 / (factor * pos)) * (1 - extrap) + (1.0 / pos) * extrap
    return inv, att


def topk_desc(v, k):
    return np.argsort(-v, kind="stable")[:k]


# ----------------------------------------------------------------------------------------
# models: each returns (logits [T, V], trace) with trace = {"hidden": [...], "router_ids": {layer: [T, k]}}
# ----------------------------------------------------------------------------------------

def fwd_mixtral(c, W, ids, k):
    T, nh, nkv = len(ids), c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or c["hidden_size"] // nh
    eps = c["rms_norm_eps"]
    inv, _ = inv_freq(rope_params(c), hd)
    ang = np.arange(T)[:, None] * inv[None]
    h, tr = embed(W, ids)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, W[p + "input_layernorm.weight"], eps)
        q = rope_half((x @ W[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd), ang)
        kk = rope_half((x @ W[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd), ang)
        v = (x @ W[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        h = h + attention(q, kk, v, hd ** -0.5).reshape(T, -1) @ W[p + "self_attn.o_proj.weight"].T
        x = rms(h, W[p + "post_attention_layernorm.weight"], eps)
        m = p + "block_sparse_moe."
        pr = softmax(x @ W[m + "gate.weight"].T)
        y = np.zeros_like(x)
        tr["router_ids"][i] = np.zeros((T, k), int)
        for t in range(T):
            top = topk_desc(pr[t], k)
            tr["router_ids"][i][t] = top
            wt = pr[t, top] / pr[t, top].sum()
            for e, w in zip(top, wt):
                e = m + f"experts.{e}."
                y[t] += w * (W[e + "w2.weight"] @ (silu(W[e + "w1.weight"] @ x[t]) * (W[e + "w3.weight"] @ x[t])))
        h = h + y
        tr["hidden"].append(h.copy())
    return final_logits(h, W, eps, tr)


def mxfp4_dequant(blocks, scales):
    """blocks [E, R, G, 16] uint8, scales [E, R, G] uint8 -> [E, R, G*32] (rows = outputs)."""
    b = blocks.astype(np.int64)
    vals = np.empty(b.shape[:-1] + (32,))
    vals[..., 0::2] = FP4[b & 15]
    vals[..., 1::2] = FP4[b >> 4]
    vals = vals * np.exp2(scales.astype(np.int64) - 127)[..., None]
    return vals.reshape(b.shape[0], b.shape[1], -1)


def gpt_oss_experts(W, p):
    m = p + "mlp.experts."
    if m + "gate_up_proj_blocks" in W:
        gu = mxfp4_dequant(W[m + "gate_up_proj_blocks"], W[m + "gate_up_proj_scales"]).transpose(0, 2, 1)
        dn = mxfp4_dequant(W[m + "down_proj_blocks"], W[m + "down_proj_scales"]).transpose(0, 2, 1)
        return gu, dn                     # [E, H, 2I], [E, I, H]
    return W[m + "gate_up_proj"], W[m + "down_proj"]


def fwd_gpt_oss(c, W, ids, k):
    T, nh, nkv, hd = len(ids), c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    inv, att = inv_freq(rope_params(c), hd)
    ang = np.arange(T)[:, None] * inv[None]
    h, tr = embed(W, ids)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        x = rms(h, W[p + "input_layernorm.weight"], eps)

        def proj(n, heads):
            return (x @ W[a + n + ".weight"].T + W[a + n + ".bias"]).reshape(T, heads, hd)
        # YaRN attention factor multiplies cos and sin, i.e. both q and k
        q = rope_half(proj("q_proj", nh), ang) * att
        kk = rope_half(proj("k_proj", nkv), ang) * att
        v = proj("v_proj", nkv)
        win = c["sliding_window"] if c["layer_types"][i] == "sliding_attention" else None
        o = attention(q, kk, v, hd ** -0.5, window=win, sinks=W[a + "sinks"])
        h = h + o.reshape(T, -1) @ W[a + "o_proj.weight"].T + W[a + "o_proj.bias"]
        x = rms(h, W[p + "post_attention_layernorm.weight"], eps)
        logits = x @ W[p + "mlp.router.weight"].T + W[p + "mlp.router.bias"]
        gu_w, dn_w = gpt_oss_experts(W, p)
        gu_b, dn_b = W[p + "mlp.experts.gate_up_proj_bias"], W[p + "mlp.experts.down_proj_bias"]
        y = np.zeros_like(x)
        tr["router_ids"][i] = np.zeros((T, k), int)
        for t in range(T):
            top = topk_desc(logits[t], k)
            tr["router_ids"][i][t] = top
            wt = softmax(logits[t, top])
            for e, w in zip(top, wt):
                gu = x[t] @ gu_w[e] + gu_b[e]
                gate, up = np.minimum(gu[0::2], 7.0), np.clip(gu[1::2], -7.0, 7.0)
                glu = gate * sigmoid(1.702 * gate)
                y[t] += w * (((up + 1.0) * glu) @ dn_w[e] + dn_b[e])
        h = h + y
        tr["hidden"].append(h.copy())
    return final_logits(h, W, eps, tr)


def deepseek_weights(c, W):
    """Dequantise DeepSeek block-FP8 weights: W = q * scale_inv[i // bm, j // bn] (ceil grid)."""
    qc = c.get("quantization_config")
    if not qc:
        return W
    bm, bn = qc["weight_block_size"]
    out = dict(W)
    for k in W:
        if k.endswith(".weight_scale_inv"):
            wk = k[:-len("_scale_inv")]
            q, s = W[wk], W[k]
            R, C = q.shape
            if s.shape != (-(-R // bm), -(-C // bn)):
                vd.fail(f"{k}: scale grid {s.shape} for weight {q.shape}")
            out[wk] = q * np.repeat(np.repeat(s, bm, 0), bn, 1)[:R, :C]
            del out[k]
    return out


def fwd_deepseek(c, W, ids, k):
    W = deepseek_weights(c, W)
    T, nh = len(ids), c["num_attention_heads"]
    nope, rope, vh = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    kvl = c["kv_lora_rank"]
    eps = c["rms_norm_eps"]
    rp = rope_params(c)
    inv, att = inv_freq(rp, rope)
    ang = np.arange(T)[:, None] * inv[None]
    scale = (nope + rope) ** -0.5
    if rp["rope_type"] != "default" and rp.get("mscale_all_dim"):
        scale *= get_mscale(float(rp["factor"]), rp["mscale_all_dim"]) ** 2
    E, G, TG = c.get("n_routed_experts", c.get("num_local_experts")), c["n_group"], c["topk_group"]
    h, tr = embed(W, ids)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        x = rms(h, W[p + "input_layernorm.weight"], eps)
        qa = rms(x @ W[a + "q_a_proj.weight"].T, W[a + "q_a_layernorm.weight"], 1e-6)
        q = (qa @ W[a + "q_b_proj.weight"].T).reshape(T, nh, nope + rope)
        ckv = x @ W[a + "kv_a_proj_with_mqa.weight"].T
        lat = rms(ckv[:, :kvl], W[a + "kv_a_layernorm.weight"], 1e-6)
        k_rot = rope_interleaved(ckv[:, None, kvl:], ang) * att            # shared by all heads
        kv = (lat @ W[a + "kv_b_proj.weight"].T).reshape(T, nh, nope + vh)
        q_full = np.concatenate([q[..., :nope], rope_interleaved(q[..., nope:], ang) * att], -1)
        k_full = np.concatenate([kv[..., :nope], np.repeat(k_rot, nh, 1)], -1)
        o = attention(q_full, k_full, kv[..., nope:], scale)
        h = h + o.reshape(T, -1) @ W[a + "o_proj.weight"].T
        x = rms(h, W[p + "post_attention_layernorm.weight"], eps)
        m = p + "mlp."
        if i < c["first_k_dense_replace"]:
            y = (silu(x @ W[m + "gate_proj.weight"].T) * (x @ W[m + "up_proj.weight"].T)) @ W[m + "down_proj.weight"].T
        else:
            s = sigmoid(x @ W[m + "gate.weight"].T)
            ch = s + W[m + "gate.e_score_correction_bias"]
            y = np.zeros_like(x)
            tr["router_ids"][i] = np.zeros((T, k), int)
            for t in range(T):
                gs = np.sort(ch[t].reshape(G, E // G), -1)[:, -2:].sum(-1)     # top-2 sum per group
                keep = topk_desc(gs, TG)
                allowed = np.full(E, -np.inf)
                for g in keep:
                    allowed[g * (E // G):(g + 1) * (E // G)] = 0.0
                top = topk_desc(ch[t] + allowed, k)
                tr["router_ids"][i][t] = top
                wt = s[t, top]
                if c.get("norm_topk_prob", True):
                    wt = wt / (wt.sum() + 1e-20)
                wt = wt * c["routed_scaling_factor"]
                for e, w in zip(top, wt):
                    ep = m + f"experts.{e}."
                    y[t] += w * (W[ep + "down_proj.weight"] @ (silu(W[ep + "gate_proj.weight"] @ x[t]) * (W[ep + "up_proj.weight"] @ x[t])))
            sh = m + "shared_experts."
            y = y + (silu(x @ W[sh + "gate_proj.weight"].T) * (x @ W[sh + "up_proj.weight"].T)) @ W[sh + "down_proj.weight"].T
        h = h + y
        tr["hidden"].append(h.copy())
    return final_logits(h, W, eps, tr)


def text_weights(W):
    """Strip the multimodal wrapper prefix, drop vision / MTP tensors."""
    out = {}
    for k, v in W.items():
        if k.startswith(("model.visual.", "mtp.")):
            continue
        out[k.replace("model.language_model.", "model.", 1)] = v
    return out


def qwen_experts(W, m, e, I):
    if m + f"experts.{e}.gate_proj.weight" in W:
        return (W[m + f"experts.{e}.gate_proj.weight"], W[m + f"experts.{e}.up_proj.weight"],
                W[m + f"experts.{e}.down_proj.weight"])
    gu = W[m + "experts.gate_up_proj"][e]                      # [2I, H]: gate rows, then up rows
    return gu[:I], gu[I:], W[m + "experts.down_proj"][e]


def gated_deltanet(c, W, a, x, nxt):
    T = x.shape[0]
    NK, NV = c["linear_num_key_heads"], c["linear_num_value_heads"]
    DK, DV, K = c["linear_key_head_dim"], c["linear_value_head_dim"], c["linear_conv_kernel_dim"]
    r = NV // NK
    if nxt:   # fused per key head: [q (DK) | k (DK) | v (r*DV) | z (r*DV)], [b (r) | a (r)]
        qkvz = (x @ W[a + "in_proj_qkvz.weight"].T).reshape(T, NK, 2 * DK + 2 * r * DV)
        q, k = qkvz[..., :DK], qkvz[..., DK:2 * DK]
        v = qkvz[..., 2 * DK:2 * DK + r * DV].reshape(T, NV, DV)
        z = qkvz[..., 2 * DK + r * DV:].reshape(T, NV, DV)
        ba = (x @ W[a + "in_proj_ba.weight"].T).reshape(T, NK, 2 * r)
        b, aa = ba[..., :r].reshape(T, NV), ba[..., r:].reshape(T, NV)
        mixed = np.concatenate([q.reshape(T, -1), k.reshape(T, -1), v.reshape(T, -1)], -1)
    else:
        mixed = x @ W[a + "in_proj_qkv.weight"].T
        z = (x @ W[a + "in_proj_z.weight"].T).reshape(T, NV, DV)
        b = x @ W[a + "in_proj_b.weight"].T
        aa = x @ W[a + "in_proj_a.weight"].T
    w = W[a + "conv1d.weight"][:, 0, :]                        # [C, K]
    pad = np.concatenate([np.zeros((K - 1, mixed.shape[1])), mixed], 0)
    conv = np.stack([(pad[t:t + K] * w.T).sum(0) for t in range(T)])
    conv = silu(conv)
    KD = NK * DK
    q = conv[:, :KD].reshape(T, NK, DK)
    k = conv[:, KD:2 * KD].reshape(T, NK, DK)
    v = conv[:, 2 * KD:].reshape(T, NV, DV)
    q = np.repeat(q, r, 1)                                     # value head h reads key head h // r
    k = np.repeat(k, r, 1)
    q = q / np.sqrt((q * q).sum(-1, keepdims=True) + 1e-6) * DK ** -0.5
    k = k / np.sqrt((k * k).sum(-1, keepdims=True) + 1e-6)
    beta = sigmoid(b)
    g = -np.exp(W[a + "A_log"]) * softplus(aa + W[a + "dt_bias"])
    S = np.zeros((NV, DK, DV))
    o = np.zeros((T, NV, DV))
    for t in range(T):
        S = S * np.exp(g[t])[:, None, None]
        mem = np.einsum("hk,hkv->hv", k[t], S)
        delta = (v[t] - mem) * beta[t][:, None]
        S = S + k[t][:, :, None] * delta[:, None, :]
        o[t] = np.einsum("hk,hkv->hv", q[t], S)
    o = rms(o, W[a + "norm.weight"], c["rms_norm_eps"]) * silu(z)
    return o.reshape(T, -1) @ W[a + "out_proj.weight"].T


def fwd_qwen_hybrid(c, W, ids, k):
    nxt = c["model_type"] == "qwen3_next"
    W = text_weights(W)
    T, nh, nkv, hd = len(ids), c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    rp = rope_params(c)
    rot = int(hd * rp.get("partial_rotary_factor", 1.0))
    inv, _ = inv_freq(rp, rot)
    ang = np.arange(T)[:, None] * inv[None]
    I = c["moe_intermediate_size"]
    h, tr = embed(W, ids)

    def prope(x):
        return np.concatenate([rope_half(x[..., :rot], ang), x[..., rot:]], -1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, W[p + "input_layernorm.weight"], eps, plus_one=True)
        if c["layer_types"][i] == "linear_attention":
            h = h + gated_deltanet(c, W, p + "linear_attn.", x, nxt)
        else:
            a = p + "self_attn."
            qg = (x @ W[a + "q_proj.weight"].T).reshape(T, nh, 2 * hd)
            q, gate = qg[..., :hd], qg[..., hd:].reshape(T, -1)
            q = prope(rms(q, W[a + "q_norm.weight"], eps, plus_one=True))
            kk = prope(rms((x @ W[a + "k_proj.weight"].T).reshape(T, nkv, hd), W[a + "k_norm.weight"], eps, plus_one=True))
            v = (x @ W[a + "v_proj.weight"].T).reshape(T, nkv, hd)
            o = attention(q, kk, v, hd ** -0.5).reshape(T, -1) * sigmoid(gate)
            h = h + o @ W[a + "o_proj.weight"].T
        x = rms(h, W[p + "post_attention_layernorm.weight"], eps, plus_one=True)
        m = p + "mlp."
        pr = softmax(x @ W[m + "gate.weight"].T)
        y = np.zeros_like(x)
        tr["router_ids"][i] = np.zeros((T, k), int)
        for t in range(T):
            top = topk_desc(pr[t], k)
            tr["router_ids"][i][t] = top
            wt = pr[t, top]
            if not nxt or c.get("norm_topk_prob", True):
                wt = wt / wt.sum()
            for e, w in zip(top, wt):
                gw, uw, dw = qwen_experts(W, m, e, I)
                y[t] += w * (dw @ (silu(gw @ x[t]) * (uw @ x[t])))
        sh = m + "shared_expert."
        shared = (silu(x @ W[sh + "gate_proj.weight"].T) * (x @ W[sh + "up_proj.weight"].T)) @ W[sh + "down_proj.weight"].T
        y = y + sigmoid(x @ W[m + "shared_expert_gate.weight"].T) * shared
        h = h + y
        tr["hidden"].append(h.copy())
    return final_logits(h, W, eps, tr, plus_one=True)


# ----------------------------------------------------------------------------------------
# dataset checks
# ----------------------------------------------------------------------------------------

DATASETS = {
    # name: (forward, k from config key, base dataset sharing the weights)
    "qwen3_5_moe_tiny": (fwd_qwen_hybrid, None),
    "qwen3_5_moe_wrapped": (fwd_qwen_hybrid, "qwen3_5_moe_tiny"),
    "qwen3_next_tiny": (fwd_qwen_hybrid, None),
    "deepseek_v3_tiny": (fwd_deepseek, None),
    "deepseek_v3_fp8": (fwd_deepseek, "deepseek_v3_tiny"),
    "kimi_k2_tiny": (fwd_deepseek, None),
    "mixtral_tiny": (fwd_mixtral, None),
    "gpt_oss_tiny": (fwd_gpt_oss, None),
    "gpt_oss_mxfp4": (fwd_gpt_oss, "gpt_oss_tiny"),
}


def load_cfg(d):
    c = json.load(open(os.path.join(d, "config.json")))
    if "text_config" in c:                       # multimodal wrapper: the language model's config
        t = dict(c["text_config"])
        t.setdefault("tie_word_embeddings", c.get("tie_word_embeddings", False))
        return c, t
    return c, c


def check_dataset(root, name, prompt_ids, ntok):
    fwd, base = DATASETS[name]
    d = os.path.join(root, name)
    print(f"== {name}")
    if not os.path.isdir(d):
        vd.fail(f"{d} missing")
    raw, c = load_cfg(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if open(os.path.join(d, f), "rb").read() != open(os.path.join(root, "tokenizer", f), "rb").read():
            vd.fail(f"{name}/{f} differs from tokenizer/{f}")
    if c.get("eos_token_id") != 2:
        vd.fail(f"{name}: eos_token_id {c.get('eos_token_id')}, expected 2 (<|im_end|>)")
    if c["vocab_size"] % 64 or c["vocab_size"] < ntok:
        vd.fail(f"{name}: vocab {c['vocab_size']}")
    T = vd.load_weights(d)
    W = {k: v[2] for k, v in T.items()}
    dts = {}
    for k, v in T.items():
        dts[v[0]] = dts.get(v[0], 0) + 1
    print("   dtypes:", dict(sorted(dts.items())))
    _, G = vd.read_safetensors(os.path.join(d, "golden.safetensors"))
    G = {k: v[2] for k, v in G.items()}
    ids = G["input_ids"].tolist()
    if ids != prompt_ids:
        vd.fail(f"{name}: golden input_ids != prompt")
    k = c["num_experts_per_tok"]
    red = [x for x in G if x.startswith("logits_topk")]
    if len(red) != 1:
        vd.fail(f"{name}: expected one logits_topk<k> tensor, got {red}")
    k2 = int(red[0][len("logits_topk"):])
    for key, v in G.items():
        if v.ndim == 2 and key not in ("logits", "logits_decode", red[0]):
            vd.fail(f"{name}: unexpected 2-D tensor {key}")
    V = c["vocab_size"]
    if G["logits"].shape != (len(ids), V) or G["greedy_ids"].shape != (16,):
        vd.fail(f"{name}: golden shapes")
    if "logits_decode" in G:
        if not (G["logits_decode"].argmax(-1) == G["greedy_ids"]).all():
            vd.fail(f"{name}: greedy_ids != argmax(logits_decode)")
        vd.close("logits_decode[0] vs logits[-1]", G["logits_decode"][0], G["logits"][-1], 1e-4)
    if not (G["logits"][-1].argmax() == G["greedy_ids"][0]):
        vd.fail(f"{name}: greedy_ids[0] != argmax(logits[-1])")
    logits, tr = fwd(c, W, ids, k)
    vd.close("logits (numpy float64 model)", logits, G["logits"], TOL)
    if "hidden_states" in G:
        vd.close("hidden_states", np.stack(tr["hidden"]), G["hidden_states"], TOL * 10)
        layers = G["router_layers"].tolist()
        if layers != sorted(tr["router_ids"]):
            vd.fail(f"{name}: router_layers {layers} vs {sorted(tr['router_ids'])}")
        mine = np.sort(np.stack([tr["router_ids"][l] for l in layers]), -1)
        if not np.array_equal(mine, np.sort(G["router_topk_ids"], -1)):
            vd.fail(f"{name}: router_topk_ids differ")
        print("   router_topk_ids                    equal (as sets)")
    vd.close(f"{red[0]}", fwd(c, W, ids, k2)[0], G[red[0]], TOL)
    rel = np.linalg.norm(G["logits"] - G[red[0]]) / np.linalg.norm(G["logits"])
    print(f"   relative change top-{k} -> top-{k2}: {rel:.3f}")
    seq = ids + G["greedy_ids"].tolist()[:-1]
    dec = fwd(c, W, seq, k)[0][len(ids) - 1:]
    if "logits_decode" in G:
        vd.close("logits_decode", dec, G["logits_decode"], TOL)
    if not np.array_equal(dec.argmax(-1), G["greedy_ids"]):
        vd.fail(f"{name}: greedy ids not reproduced by the numpy model")
    print("   greedy_ids", G["greedy_ids"].tolist())
    return raw, c, W


def check_all(root, prompt_ids, ntok):
    seen = {}
    for name in DATASETS:
        seen[name] = check_dataset(root, name, prompt_ids, ntok)
    # --- layout relations between datasets sharing weights
    _, _, Wt = seen["qwen3_5_moe_tiny"]
    raw, _, Ww = seen["qwen3_5_moe_wrapped"]
    if raw.get("model_type") != "qwen3_5_moe" or raw["text_config"].get("model_type") != "qwen3_5_moe_text":
        vd.fail("wrapped: model_type / text_config.model_type")
    gw = open(os.path.join(root, "qwen3_5_moe_wrapped", "golden.safetensors"), "rb").read()
    if gw != open(os.path.join(root, "qwen3_5_moe_tiny", "golden.safetensors"), "rb").read():
        vd.fail("wrapped golden.safetensors must be byte-identical to qwen3_5_moe_tiny's")
    extra = [k for k in Ww if k.startswith(("model.visual.", "mtp."))]
    if not extra or not all(k.startswith(("model.language_model.", "model.visual.", "mtp.", "lm_head."))
                            for k in Ww):
        vd.fail("wrapped: tensor prefixes")
    tw = text_weights(Ww)
    E = seen["qwen3_5_moe_tiny"][1]["num_experts"]
    for k, v in tw.items():
        if k.endswith("experts.gate_up_proj"):
            p = k[:-len("gate_up_proj")]
            ref = np.stack([np.concatenate([Wt[p + f"{e}.gate_proj.weight"], Wt[p + f"{e}.up_proj.weight"]])
                            for e in range(E)])
        elif k.endswith("experts.down_proj"):
            p = k[:-len("down_proj")]
            ref = np.stack([Wt[p + f"{e}.down_proj.weight"] for e in range(E)])
        else:
            ref = Wt[k]
        if not np.array_equal(v, ref):
            vd.fail(f"wrapped: {k} differs from qwen3_5_moe_tiny")
    print("== wrapped == tiny (prefix, fused experts, same golden): bitwise")
    # --- FP8: layout and closeness to the bf16 weights
    raw8, c8, W8 = seen["deepseek_v3_fp8"]
    _, _, Wd = seen["deepseek_v3_tiny"]
    T8 = vd.load_weights(os.path.join(root, "deepseek_v3_fp8"))
    qc = raw8["quantization_config"]
    if qc != {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}:
        vd.fail(f"fp8 quantization_config {qc}")
    deq = deepseek_weights(c8, W8)
    nq = 0
    for k, (dt, shape, _) in T8.items():
        if k.endswith("weight_scale_inv"):
            continue
        quant = (len(shape) == 2 and k.endswith(".weight") and not k.endswith("mlp.gate.weight")
                 and (".self_attn." in k or ".mlp." in k))
        if quant != (dt == "F8_E4M3") or quant != (k[:-len("weight")] + "weight_scale_inv" in T8):
            vd.fail(f"fp8: {k} is {dt}")
        if quant:
            nq += 1
            err = np.abs(deq[k] - Wd[k]).max() / np.abs(Wd[k]).max()
            if not err <= 1 / 15:
                vd.fail(f"fp8: {k} dequantised too far from bf16 ({err})")
        elif not np.array_equal(W8[k], Wd[k]):
            vd.fail(f"fp8: {k} should equal deepseek_v3_tiny's")
    print(f"== deepseek_v3_fp8: {nq} FP8 weights with 128x128 scale grids, rest == deepseek_v3_tiny")
    # --- MXFP4
    raw4, c4, W4 = seen["gpt_oss_mxfp4"]
    _, _, Wg = seen["gpt_oss_tiny"]
    T4 = vd.load_weights(os.path.join(root, "gpt_oss_mxfp4"))
    if raw4["quantization_config"].get("quant_method") != "mxfp4":
        vd.fail("mxfp4 quantization_config")
    for k, (dt, shape, _) in T4.items():
        if k.endswith(("_blocks", "_scales")):
            if dt != "U8":
                vd.fail(f"mxfp4: {k} is {dt}")
            continue
        if not np.array_equal(W4[k], Wg[k]):
            vd.fail(f"mxfp4: {k} should equal gpt_oss_tiny's")
    for i in range(c4["num_hidden_layers"]):
        p = f"model.layers.{i}."
        gu, dn = gpt_oss_experts(W4, p)
        Eg, Hh, I2 = Wg[p + "mlp.experts.gate_up_proj"].shape
        if T4[p + "mlp.experts.gate_up_proj_blocks"][1] != [Eg, I2, Hh // 32, 16] or \
                T4[p + "mlp.experts.down_proj_blocks"][1] != [Eg, Hh, I2 // 2 // 32, 16]:
            vd.fail("mxfp4 block shapes")
        for mine, ref in ((gu, Wg[p + "mlp.experts.gate_up_proj"]), (dn, Wg[p + "mlp.experts.down_proj"])):
            if np.abs(mine - ref).max() > 0.35 * np.abs(ref).max():
                vd.fail("mxfp4 dequantised experts too far from bf16")
    print("== gpt_oss_mxfp4: U8 blocks/scales in the published layout, rest == gpt_oss_tiny")
