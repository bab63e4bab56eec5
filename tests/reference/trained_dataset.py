"""Writes the trained model as a tests/data dataset (train_moe.py calls it).

Same layout and the same golden recipe as make_reference.py's Qwen3-MoE datasets: the
checkpoint as save_pretrained writes it in bf16, the goldens computed by transformers in
float32 eager arithmetic on the CPU from the bf16-rounded weights (the model is reloaded
from the written directory, so the goldens see exactly the stored values).
"""

import json
import math
import os
import shutil

import numpy as np
import torch

from make_reference import (PROMPT, intermediates, load_model, router_margin, run_golden,
                            save_st)
from ref_common import ROUTER_CLASSES, sort_safetensors_metadata

# Router modules of the trained architectures; each returns (logits, weights, top-k ids).
ROUTER_NAMES = ("Qwen3MoeTopKRouter",) + tuple(ROUTER_CLASSES)


def router_out(mod, o):
    """(logits [N, E], top-k ids [N, k]) of one router forward. The routers return (logits,
    weights, ids); a DeepSeek-V3 router that returns only its logits gets the ids by the same
    rule its MoE block applies (sigmoid + e_score_correction_bias, group-limited top-k)."""
    if isinstance(o, (tuple, list)):
        return o[0], o[2]
    from ref_common import deepseek_select
    c = mod.config
    lg = o.reshape(-1, o.shape[-1])
    with torch.no_grad():
        sc = torch.sigmoid(lg.float()) + mod.e_score_correction_bias.float()
        ids = deepseek_select(sc, c.n_group, c.topk_group, c.num_experts_per_tok)[0]
    return lg, ids

LOWER_BUDGETS = (4, 2)  # logits_topk{k}: half and a quarter of the trained top-8


def usage_entropy(counts):
    """Entropy in bits of the expert-selection frequencies of one layer."""
    c = np.asarray(counts, dtype=np.float64)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


@torch.no_grad()
def route_counts(model, ids_batches, n_experts, autocast=None):
    """Per-MoE-layer counts of each expert's selection (top-k ids of the router) over
    batches of token ids [B, T]; also the mean cross-entropy of next-token prediction."""
    routers = [m for m in model.modules() if type(m).__name__ in ROUTER_NAMES]
    counts = [torch.zeros(n_experts, dtype=torch.float64) for _ in routers]
    hooks = []
    for i, r in enumerate(routers):
        def h(mod, args, out, i=i):
            idx = router_out(mod, out)[1].reshape(-1)
            counts[i] += torch.bincount(idx.cpu(), minlength=n_experts).double()
        hooks.append(r.register_forward_hook(h))
    nll, n = 0.0, 0
    try:
        for ids in ids_batches:
            if autocast is not None:
                with autocast():
                    logits = model(input_ids=ids, use_cache=False).logits
            else:
                logits = model(input_ids=ids, use_cache=False).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1)
            tgt = ids[:, 1:]
            nll += float(-lp.gather(-1, tgt.unsqueeze(-1)).sum())
            n += tgt.numel()
    finally:
        for x in hooks:
            x.remove()
    return [c.numpy() for c in counts], nll / max(n, 1)


def entropy_report(counts):
    rows = []
    for c in counts:
        rows.append({"entropy_bits": round(usage_entropy(c), 4),
                     "max_share": round(float(c.max() / c.sum()), 4),
                     "min_share": round(float(c.min() / c.sum()), 5),
                     "unused_experts": int((c == 0).sum())})
    return rows


def finish_dataset_dir(out_dir, architecture, tok_dir, heldout_text):
    """After save_pretrained into out_dir: config.json names `architecture` and bf16 and
    loses transformers' run-time keys; add the tokenizer files and the held-out text."""
    cpath = os.path.join(out_dir, "config.json")
    with open(cpath) as f:
        cj = json.load(f)
    cj["architectures"] = [architecture]
    cj["dtype"] = "bfloat16"
    for k in ("_experts_implementation", "_attn_implementation", "experts_implementation"):
        cj.pop(k, None)
    with open(cpath, "w") as f:
        json.dump(cj, f, indent=2, sort_keys=True)
        f.write("\n")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out_dir, f))
    with open(os.path.join(out_dir, "heldout.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(heldout_text)


def write_dataset(model, out_dir, tok_dir, heldout_text, heldout_ids, prompt_ids, log):
    """model: the trained Qwen3MoeForCausalLM (any device/dtype). Returns the info dict."""
    import copy
    info = {}
    os.makedirs(out_dir, exist_ok=True)
    m = copy.deepcopy(model).to("cpu")
    m.config.output_router_logits = False
    m.config.use_cache = True
    # a copy: .to(bfloat16) also rounds the RoPE inv_freq buffer, which is not saved
    m.to(torch.bfloat16).save_pretrained(out_dir)
    del m
    finish_dataset_dir(out_dir, "Qwen3MoeForCausalLM", tok_dir, heldout_text)
    files = sorted(os.listdir(out_dir))
    info["files"] = {f: os.path.getsize(os.path.join(out_dir, f)) for f in files}
    log(f"[dataset] wrote {info['files']}")

    # --- goldens: float32 eager on the CPU from the written (bf16) weights -------------
    torch.use_deterministic_algorithms(True)
    ref = load_model(out_dir)
    from safetensors import safe_open
    with safe_open(os.path.join(out_dir, "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
    info["tensor_names_layer0_experts"] = [n for n in names if ".layers.0.mlp.experts." in n][:6]
    info["n_tensors"] = len(names)
    full, greedy, dec, chk = run_golden(ref, prompt_ids)
    seq = prompt_ids + greedy[:-1]
    margins = {str(ref.config.num_experts_per_tok): router_margin(ref, seq)}
    golden = {"input_ids": torch.tensor(prompt_ids, dtype=torch.int32), "logits": full.contiguous(),
              "greedy_ids": torch.tensor(greedy, dtype=torch.int32), "logits_decode": dec.contiguous()}
    for k in LOWER_BUDGETS:
        mk = load_model(out_dir, num_experts_per_tok=k)
        assert mk.config.num_experts_per_tok == k
        with torch.no_grad():
            golden[f"logits_topk{k}"] = mk(input_ids=torch.tensor([prompt_ids]),
                                           use_cache=False).logits[0].float().contiguous()
        margins[str(k)] = router_margin(mk, seq)
        del mk
    inter = intermediates(ref, prompt_ids)
    with torch.no_grad():
        chk["intermediates_lm_head_maxdiff"] = float((ref.lm_head(inter["hidden_states"][-1]) - full).abs().max())
    golden.update(inter)
    gpath = os.path.join(out_dir, "golden.safetensors")
    save_st(golden, gpath, {"format": "pt", "prompt": PROMPT})
    sort_safetensors_metadata(gpath)
    top2 = dec.topk(2, -1).values
    info["golden"] = {"greedy_ids": greedy, "checks": chk, "router_margin_by_topk": margins,
                      "greedy_logit_margin": float((top2[:, 0] - top2[:, 1]).min()),
                      "max_abs_logit": float(full.abs().max()),
                      "rel_change_topk": {str(k): float((full - golden[f"logits_topk{k}"]).norm() / full.norm())
                                          for k in LOWER_BUDGETS}}
    try:
        from transformers import AutoTokenizer
        info["golden"]["greedy_text"] = AutoTokenizer.from_pretrained(out_dir).decode(greedy)
    except Exception as e:  # noqa: BLE001
        info["golden"]["greedy_text_error"] = repr(e)[:300]
    log(f"[dataset] golden: {json.dumps(info['golden'])[:1500]}")

    # --- the held-out file, as moestream's test reads it: one pass, float32 -------------
    counts, nll = route_counts(ref, [torch.tensor([heldout_ids])], ref.config.num_experts)
    info["heldout_file"] = {"tokens": len(heldout_ids), "bytes": len(heldout_text.encode("utf-8")),
                            "loss_f32": nll, "perplexity_f32": math.exp(nll),
                            "usage_by_layer": entropy_report(counts),
                            "counts_by_layer": [c.astype(int).tolist() for c in counts]}
    log(f"[dataset] held-out file: loss {nll:.4f}, entropy by layer "
        f"{[r['entropy_bits'] for r in info['heldout_file']['usage_by_layer']]}")
    info["files"] = {f: os.path.getsize(os.path.join(out_dir, f)) for f in sorted(os.listdir(out_dir))}
    return info


def write_dataset_arch(model, out_dir, tok_dir, heldout_text, heldout_ids, prompt_ids, log,
                       cls, kind, keep_f32, ntok):
    """The DeepSeek-V3 / Qwen3.5-MoE trained models: the checkpoint as save_pretrained writes it
    (bf16, with the tensors named in keep_f32 in float32 as the published checkpoints store
    them) and golden.safetensors by the recipe of make_reference_archs.py (ref_common.evaluate
    and finish_golden: float32 eager on the CPU from the written weights, full and half top-k,
    intermediates). Returns the info dict."""
    import copy

    import ref_common
    info = {}
    os.makedirs(out_dir, exist_ok=True)
    m = copy.deepcopy(model).to("cpu")
    m.config.output_router_logits = False
    m.config.use_cache = True
    m.to(torch.bfloat16)
    kept = []
    with torch.no_grad():
        src = dict(model.named_parameters())
        src.update(dict(model.named_buffers()))
        for name, t in list(m.named_parameters()) + list(m.named_buffers()):
            if any(name.endswith(s) for s in keep_f32):
                t.data = src[name].detach().to("cpu", torch.float32).clone()
                kept.append(name)
    info["kept_float32"] = len(kept)
    m.save_pretrained(out_dir)
    del m
    finish_dataset_dir(out_dir, cls.__name__, tok_dir, heldout_text)
    from safetensors import safe_open
    with safe_open(os.path.join(out_dir, "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
        info["dtypes"] = sorted({str(f.get_slice(n).get_dtype()) for n in names})
    info["n_tensors"] = len(names)
    info["files"] = {f: os.path.getsize(os.path.join(out_dir, f)) for f in sorted(os.listdir(out_dir))}
    log(f"[dataset] wrote {info['files']}, {len(names)} tensors {info['dtypes']}, {len(kept)} kept f32")

    torch.use_deterministic_algorithms(True)
    k = model.config.num_experts_per_tok
    res = ref_common.evaluate(out_dir, cls, prompt_ids, ntok, k, k // 2, kind)
    ref_common.finish_golden(out_dir, prompt_ids, res)
    info["golden"] = {"greedy_ids": res["greedy"], "checks": res["chk"], "quality": res["q"],
                      "reduced_topk": k // 2}
    try:
        from transformers import AutoTokenizer
        info["golden"]["greedy_text"] = AutoTokenizer.from_pretrained(out_dir).decode(res["greedy"])
    except Exception as e:  # noqa: BLE001
        info["golden"]["greedy_text_error"] = repr(e)[:300]
    log(f"[dataset] golden: {json.dumps(info['golden'], default=str)[:1500]}")

    ref = res["model"]
    n_exp = getattr(ref.config, "n_routed_experts", None) or ref.config.num_experts
    counts, nll = route_counts(ref, [torch.tensor([heldout_ids])], n_exp)
    info["heldout_file"] = {"tokens": len(heldout_ids), "bytes": len(heldout_text.encode("utf-8")),
                            "loss_f32": nll, "perplexity_f32": math.exp(nll),
                            "usage_by_layer": entropy_report(counts),
                            "counts_by_layer": [c.astype(int).tolist() for c in counts]}
    log(f"[dataset] held-out file: loss {nll:.4f}, entropy by layer "
        f"{[r['entropy_bits'] for r in info['heldout_file']['usage_by_layer']]}")
    info["files"] = {f: os.path.getsize(os.path.join(out_dir, f)) for f in sorted(os.listdir(out_dir))}
    return info
