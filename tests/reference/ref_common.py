"""Shared helpers for the per-architecture reference generators (make_reference_archs.py).

Needs torch, transformers >= 5, safetensors, numpy.  Reuses the prompt, the greedy
decoding loop and a few utilities of make_reference.py (the Qwen3-MoE generator), so the
new datasets are made exactly the same way as the existing ones.
"""

import json
import os
import shutil
import traceback

import numpy as np
import torch

from make_reference import (N_GREEDY, PROMPT, force_eager, natural_key,  # noqa: F401
                            residual_stream_hooks, run_golden, save_st, load_st,
                            stacked_residual_stream)

VOCAB = 1024          # tokenizer's 1001 tokens rounded up to a multiple of 64
IM_END = 2            # <|im_end|>
H = 64                # hidden size of every tiny model

# Classes whose forward returns (router_logits, topk_weights, topk_indices).
ROUTER_CLASSES = ("Qwen3_5MoeTopKRouter", "Qwen3NextTopKRouter", "DeepseekV3TopkRouter",
                  "MixtralTopKRouter", "GptOssTopKRouter")


# ----------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------

def make_weights(spec, seed):
    """spec: name -> (shape, scale, offset[, dtype]).  float32 master t = offset + scale*N(0,1),
    drawn in natural name order from one torch.Generator; then rounded to the storage dtype
    (bf16 unless the spec says otherwise)."""
    g = torch.Generator().manual_seed(seed)
    master, canon = {}, {}
    for name in sorted(spec, key=natural_key):
        shape, scale, offset = spec[name][:3]
        dtype = spec[name][3] if len(spec[name]) > 3 else torch.bfloat16
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        t = (offset + scale * r).contiguous()
        master[name] = t
        canon[name] = t.to(dtype).contiguous()
    return master, canon


def write_config(cfg_obj, target, architectures, patch=None):
    """save_pretrained the config (transformers-5 form), then set architectures/dtype."""
    os.makedirs(target, exist_ok=True)
    cfg_obj.save_pretrained(target)
    path = os.path.join(target, "config.json")
    with open(path) as f:
        cj = json.load(f)
    cj["architectures"] = list(architectures)
    cj["dtype"] = "bfloat16"
    if patch:
        cj.update(patch)
    with open(path, "w") as f:
        json.dump(cj, f, indent=2, sort_keys=True)
        f.write("\n")
    return cj


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------

def load_lm(model_dir, cls, dtype=torch.float32, allow_unexpected=(), **kw):
    """from_pretrained with eager attention/experts, float32 by default; the load must be clean."""
    base = dict(dtype=dtype, attn_implementation="eager", output_loading_info=True)
    try:
        model, info = cls.from_pretrained(model_dir, experts_implementation="eager", **base, **kw)
    except (TypeError, ValueError) as e:
        if "experts_implementation" not in str(e):
            raise
        model, info = cls.from_pretrained(model_dir, **base, **kw)
    force_eager(model)
    bad = {}
    for k, v in info.items():
        if not v:
            continue
        if k == "unexpected_keys":
            v = [x for x in v if not any(x.startswith(p) for p in allow_unexpected)]
            if not v:
                continue
        bad[k] = v if not isinstance(v, (set, list)) else sorted(map(str, v))[:20]
    if bad:
        raise RuntimeError(f"loading {model_dir} was not clean: {bad}")
    model.eval()
    return model


def inv_freq_dtypes(model):
    return sorted({str(b.dtype) for n, b in model.named_buffers() if n.endswith("inv_freq")})


# ----------------------------------------------------------------------------------------
# Router inspection
# ----------------------------------------------------------------------------------------

def router_modules(model):
    out = []
    for name, mod in model.named_modules():
        if type(mod).__name__ in ROUTER_CLASSES:
            layer = int(name.split("layers.")[1].split(".")[0])
            out.append((layer, name, mod))
    return sorted(out, key=lambda t: t[0])


def _sorted_topk(weights, ids):
    """Sort each token's k (weight, id) pairs by weight descending, then id ascending."""
    w = weights.float().cpu().numpy()
    i = ids.long().cpu().numpy()
    ws, is_ = np.empty_like(w), np.empty_like(i)
    for t in range(w.shape[0]):
        o = sorted(range(w.shape[1]), key=lambda j: (-w[t, j], i[t, j]))
        ws[t], is_[t] = w[t, o], i[t, o]
    return ws, is_


@torch.no_grad()
def capture(model, ids):
    """One full forward (no cache) over ids, recording the residual stream and each router's
    input and output.  Returns dict with 'hidden' [L+2, T, H] and per MoE layer
    (layer, x [T, H], logits [T, E], weights [T, k], ids [T, k])."""
    rec, routers = {}, {}
    hooks = residual_stream_hooks(model, rec)
    for layer, name, mod in router_modules(model):
        def pre(mod, args, layer=layer):
            routers.setdefault(layer, {})["x"] = args[0].reshape(-1, args[0].shape[-1]).float().clone()

        def post(mod, args, o, layer=layer):
            logits, w, idx = o[0], o[1], o[2]
            r = routers.setdefault(layer, {})
            r["logits"] = logits.reshape(-1, logits.shape[-1]).float().clone()
            r["weights"], r["ids"] = _sorted_topk(w.reshape(-1, w.shape[-1]), idx.reshape(-1, idx.shape[-1]))
        hooks.append(mod.register_forward_pre_hook(pre))
        hooks.append(mod.register_forward_hook(post))
    try:
        out = model(input_ids=torch.tensor([ids]), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    hidden = stacked_residual_stream(rec, len(model.model.layers))
    return {"hidden": hidden, "routers": [(k, routers[k]) for k in sorted(routers)],
            "logits": out.logits[0].float()}


def choice_scores(kind, model, layer, x):
    """The scores whose top-k picks the experts, as the reference computes them (float32)."""
    mod = dict((l, m) for l, _, m in router_modules(model))[layer]
    W = mod.weight.float()
    if kind == "softmax":          # Qwen3.5 / Qwen3-Next / Mixtral: monotone in the logits
        return x @ W.T, None
    if kind == "gpt_oss":          # logits with the router bias, top-k on logits
        return x @ W.T + mod.bias.float(), None
    if kind == "deepseek":
        s = torch.sigmoid(x @ W.T)
        return s + mod.e_score_correction_bias.float(), s
    raise ValueError(kind)


def deepseek_select(c, n_group, topk_group, k):
    """DeepSeek-V3 noaux_tc selection on choice scores c [T, E] (sigmoid + bias)."""
    T, E = c.shape
    gs = c.view(T, n_group, E // n_group).topk(2, dim=-1)[0].sum(-1)          # [T, G]
    gidx = gs.topk(topk_group, dim=-1)[1]
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1.0)
    smask = gmask.unsqueeze(-1).expand(T, n_group, E // n_group).reshape(T, E)
    cm = c.masked_fill(smask == 0, float("-inf"))
    return cm.topk(k, dim=-1)[1], gs, cm


@torch.no_grad()
def router_stats(kind, model, seq, k):
    """Margins of every top-k decision over seq (prompt + greedy tokens), plus per-architecture
    facts that show a feature matters (DeepSeek bias and group limit, gpt-oss clamp)."""
    cap = capture(model, seq)
    cfg = model.config
    st = {"margin": float("inf")}
    flips_bias, flips_group, n_dec = 0, 0, 0
    clamp_hits, clamp_total = 0, 0
    for layer, r in cap["routers"]:
        x = r["x"]
        c, s = choice_scores(kind, model, layer, x)
        if kind == "deepseek":
            G, TG = cfg.n_group, cfg.topk_group
            chosen, gs, cm = deepseek_select(c, G, TG, k)
            if TG < G:
                gsv = gs.sort(-1, descending=True).values
                st["margin"] = min(st["margin"], float((gsv[:, TG - 1] - gsv[:, TG]).min()))
            cmv = cm.sort(-1, descending=True).values
            finite = torch.isfinite(cmv[:, k])
            if finite.any():
                st["margin"] = min(st["margin"], float((cmv[finite, k - 1] - cmv[finite, k]).min()))
            nob, _, _ = deepseek_select(s, G, TG, k)            # without the correction bias
            nog = c.topk(k, dim=-1)[1]                           # without the group limit
            for t in range(c.shape[0]):
                a = set(chosen[t].tolist())
                flips_bias += a != set(nob[t].tolist())
                flips_group += a != set(nog[t].tolist())
                n_dec += 1
            ref_ids = np.sort(chosen.numpy(), -1)
        else:
            v = c.sort(-1, descending=True).values
            st["margin"] = min(st["margin"], float((v[:, k - 1] - v[:, k]).min()))
            ref_ids = np.sort(c.topk(k, dim=-1)[1].numpy(), -1)
        if not np.array_equal(ref_ids, np.sort(r["ids"], -1)):
            st["router_recompute_mismatch"] = True
        if kind == "gpt_oss":
            ex = model.model.layers[layer].mlp.experts
            for t in range(x.shape[0]):
                for e in r["ids"][t]:
                    gu = x[t] @ ex.gate_up_proj[int(e)].float() + ex.gate_up_proj_bias[int(e)].float()
                    gate, up = gu[::2], gu[1::2]
                    clamp_hits += int((gate > 7.0).sum() + (up.abs() > 7.0).sum())
                    clamp_total += gate.numel() + up.numel()
    if kind == "deepseek":
        st["bias_changes_choice_frac"] = flips_bias / max(n_dec, 1)
        st["group_limit_changes_choice_frac"] = flips_group / max(n_dec, 1)
    if kind == "gpt_oss":
        st["clamped_frac"] = clamp_hits / max(clamp_total, 1)
    return st


def golden_extras(model, ids):
    """hidden_states [L+2, T, H] and router tensors stacked over the MoE layers (all 1-D/3-D)."""
    cap = capture(model, ids)
    out = {"hidden_states": cap["hidden"].contiguous()}
    layers = [l for l, _ in cap["routers"]]
    out["router_layers"] = torch.tensor(layers, dtype=torch.int32)
    out["router_logits"] = torch.stack([r["logits"] for _, r in cap["routers"]]).contiguous()
    out["router_topk_ids"] = torch.tensor(np.stack([r["ids"] for _, r in cap["routers"]]),
                                          dtype=torch.int32)
    out["router_topk_weights"] = torch.tensor(np.stack([r["weights"] for _, r in cap["routers"]]),
                                              dtype=torch.float32)
    return out, cap["logits"]


# ----------------------------------------------------------------------------------------
# Golden + quality
# ----------------------------------------------------------------------------------------

def quality(full, greedy, full2, dec, ntok, st1, st2, extra_req=None, min_margin=2e-3):
    rel = float((full - full2).norm() / full.norm())
    counts = np.bincount(np.array(greedy), minlength=1)
    p = torch.softmax(full, -1).max(-1).values
    top2 = dec.topk(2, -1).values
    q = {"max_abs_logit": float(full.abs().max()), "rel_change_topk_reduced": rel,
         "distinct_greedy": len(set(greedy)), "max_repeat": int(counts.max()),
         "greedy_all_in_tokenizer": all(t < ntok for t in greedy),
         "mean_top1_prob": float(p.mean()),
         "greedy_logit_margin": float((top2[:, 0] - top2[:, 1]).min()),
         "router_margin_topk": st1["margin"], "router_margin_topk_reduced": st2["margin"]}
    for k, v in st1.items():
        if k != "margin":
            q[k] = v
    ok = (q["router_margin_topk"] >= min_margin and q["router_margin_topk_reduced"] >= min_margin
          and q["greedy_logit_margin"] >= 0.02 and q["distinct_greedy"] >= 4
          and q["max_repeat"] <= 6 and rel >= 0.1 and q["greedy_all_in_tokenizer"]
          and 3.0 <= q["max_abs_logit"] <= 60.0 and q["mean_top1_prob"] >= 0.02
          and not st1.get("router_recompute_mismatch") and not st2.get("router_recompute_mismatch"))
    for key, lo in (extra_req or {}).items():
        ok = ok and q.get(key, 0.0) >= lo
    q["ok"] = bool(ok)
    return q


def evaluate(model_dir, cls, prompt_ids, ntok, k, k2, kind, extra_req=None, load_kw=None,
             load_kw2=None):
    """Golden + quality of one checkpoint directory (float32, eager).  load_kw2 (if given)
    loads the reduced-top-k model (e.g. an explicit config with num_experts_per_tok = k2)."""
    load_kw = load_kw or {}
    model = load_lm(model_dir, cls, **load_kw)
    assert model.config.num_experts_per_tok == k, model.config.num_experts_per_tok
    full, greedy, dec, chk = run_golden(model, prompt_ids)
    if load_kw2 is not None:
        model2 = load_lm(model_dir, cls, **load_kw2)
    else:
        model2 = load_lm(model_dir, cls, num_experts_per_tok=k2, **load_kw)
    assert model2.config.num_experts_per_tok == k2, model2.config.num_experts_per_tok
    with torch.no_grad():
        full2 = model2(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0].float()
    seq = prompt_ids + greedy[:-1]
    st1 = router_stats(kind, model, seq, k)
    st2 = router_stats(kind, model2, seq, k2)
    # margins are in logit space, except DeepSeek's (sigmoid score + bias, in (0, 1) + bias)
    q = quality(full, greedy, full2, dec, ntok, st1, st2, extra_req,
                min_margin=2e-4 if kind == "deepseek" else 2e-3)
    chk["inv_freq_dtypes"] = inv_freq_dtypes(model)
    return {"model": model, "full": full, "greedy": greedy, "dec": dec, "full2": full2,
            "chk": chk, "q": q, "k2": k2}


def write_and_evaluate(target, cfg_obj, architectures, tensors, cls, prompt_ids, ntok, k, k2, kind,
                       extra_req=None):
    """A candidate checkpoint: cfg_obj's config and the tensors written to target, then
    evaluate()d there (the result of evaluate)."""
    write_config(cfg_obj, target, architectures)
    save_st(tensors, os.path.join(target, "model.safetensors"))
    return evaluate(target, cls, prompt_ids, ntok, k, k2, kind, extra_req)


def sort_safetensors_metadata(path):
    """safetensors writes the __metadata__ map in arbitrary (hash) order, so two runs can give
    files that differ only there.  Rewrite the header in place with the metadata keys sorted
    (same length, same compact JSON as safetensors writes) so regenerated files are identical."""
    import struct
    from collections import OrderedDict
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        text = raw.decode("utf-8")
        body = text.rstrip(" ")
        h = json.loads(body, object_pairs_hook=OrderedDict)
        if "__metadata__" not in h:
            return
        h["__metadata__"] = OrderedDict(sorted(h["__metadata__"].items()))
        h.move_to_end("__metadata__", last=False)
        new = json.dumps(h, separators=(",", ":"), ensure_ascii=False)
        if len(new.encode("utf-8")) != len(body.encode("utf-8")):
            raise RuntimeError(f"{path}: header re-serialisation changed its length")
        f.seek(8)
        f.write((new + text[len(body):]).encode("utf-8"))


def write_golden(path, prompt_ids, res, with_decode=True, extras=None):
    t = {"input_ids": torch.tensor(prompt_ids, dtype=torch.int32),
         "logits": res["full"].contiguous(),
         "greedy_ids": torch.tensor(res["greedy"], dtype=torch.int32),
         f"logits_topk{res['k2']}": res["full2"].contiguous()}
    if with_decode:
        t["logits_decode"] = res["dec"].contiguous()
    if extras:
        t.update(extras)
    save_st(t, path, {"format": "pt", "prompt": PROMPT})
    sort_safetensors_metadata(path)


def finish_golden(model_dir, prompt_ids, res, with_decode=True):
    """Write golden.safetensors with the intermediate tensors; check they agree with logits."""
    ex, lg = golden_extras(res["model"], prompt_ids)
    res["chk"]["extras_logits_maxdiff"] = float((lg - res["full"]).abs().max())
    assert res["chk"]["extras_logits_maxdiff"] == 0.0, res["chk"]
    write_golden(os.path.join(model_dir, "golden.safetensors"), prompt_ids, res, with_decode, ex)


def save_pretrained_check(src_dir, cls, canon, dst_dir, load_kw=None, allow_unexpected=()):
    """Load src_dir in bf16 (a fresh instance: no float32 model is ever cast) and save_pretrained;
    compare names/dtypes/values with the hand-written tensors; copy the file into dst_dir if
    identical (and generation_config.json in any case)."""
    out_file = os.path.join(dst_dir, "model.safetensors")
    import tempfile
    tmp = tempfile.mkdtemp()
    m = load_lm(src_dir, cls, dtype=torch.bfloat16, allow_unexpected=allow_unexpected, **(load_kw or {}))
    m.save_pretrained(tmp)
    files = sorted(os.listdir(tmp))
    sd = {}
    for f in files:
        if f.endswith(".safetensors"):
            sd.update(load_st(os.path.join(tmp, f)))
    info = {"files": files, "same_names": set(sd) == set(canon)}
    info["only_in_save_pretrained"] = sorted(set(sd) - set(canon))[:10]
    info["only_in_ours"] = sorted(set(canon) - set(sd))[:10]
    info["same_dtypes"] = info["same_names"] and all(sd[k].dtype == canon[k].dtype for k in canon)
    info["same_values"] = info["same_dtypes"] and all(torch.equal(sd[k], canon[k]) for k in canon)
    info["dtypes"] = sorted({str(v.dtype) for v in sd.values()})
    if "generation_config.json" in files:
        shutil.copy(os.path.join(tmp, "generation_config.json"), dst_dir)
    if info["same_values"] and files.count("model.safetensors") == 1:
        shutil.copy(os.path.join(tmp, "model.safetensors"), out_file)
        info["dataset_file"] = "written by save_pretrained"
    else:
        info["dataset_file"] = "written by safetensors.save_file (save_pretrained differed)"
    shutil.rmtree(tmp)
    return info


def copy_tok(tok_dir, dst):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(dst, f))


def write_dataset(out, name, src, cls, canon, tok_dir, prompt_ids, res):
    """Make the dataset directory out/name from the evaluated model in src: its configs, the
    weights (save_pretrained's file where identical to canon, else src's), the tokenizer and
    golden.safetensors.  Returns (the directory, save_pretrained_check's info)."""
    d = os.path.join(out, name)
    os.makedirs(d)
    for f in ("config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), d)
    spi = save_pretrained_check(src, cls, canon, d)
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        shutil.copy(os.path.join(src, "model.safetensors"), d)
    copy_tok(tok_dir, d)
    finish_golden(d, prompt_ids, res)
    return d, spi


def pick_seed(name, seed0, build, n_seeds):
    """build(seed) -> (ok, payload).  First seed that passes."""
    for s in range(seed0, seed0 + n_seeds):
        try:
            ok, payload = build(s)
        except Exception:  # noqa: BLE001
            print(f"[{name}] seed {s}: EXCEPTION")
            traceback.print_exc()
            raise
        if ok:
            return s, payload
    raise RuntimeError(f"[{name}] no seed in {n_seeds} met the quality criteria")


def tensor_table(path):
    from safetensors import safe_open
    rows = {}
    with safe_open(path, "pt") as f:
        for k in f.keys():
            t = f.get_slice(k)
            rows[k] = [t.get_dtype(), list(t.get_shape())]
    return rows
