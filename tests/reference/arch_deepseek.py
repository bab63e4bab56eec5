"""DeepSeek-V3 (bf16 and block-FP8) and Kimi K2 reference datasets.

MLA attention (q_a/q_b low rank, kv_a_proj_with_mqa + kv_b_proj), decoupled RoPE on
qk_rope_head_dim with interleaved pairs, YaRN with mscale, first_k_dense_replace dense
layers, sigmoid routing with e_score_correction_bias, group-limited top-k, routed scaling,
one shared expert.
"""

import json
import math
import os
import shutil

import torch

from ref_common import (H, IM_END, VOCAB, copy_tok, evaluate, finish_golden, load_lm,
                        make_weights, pick_seed, save_st, write_and_evaluate, write_dataset,
                        write_json)

NH, QL, KVL, NOPE, ROPE, VH = 4, 48, 32, 16, 16, 16
DENSE_I, MOE_I, N_SHARED = 160, 16, 1
FP8_BLOCK = 128
FP8_MAX = 448.0

DS = dict(name="deepseek_v3_tiny", layers=3, E=16, k=4, k2=2, n_group=4, topk_group=2,
          scaling=2.5, rope={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0,
                             "original_max_position_embeddings": 4096, "beta_fast": 32.0,
                             "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
          max_pos=163840)
KIMI = dict(name="kimi_k2_tiny", layers=2, E=16, k=4, k2=2, n_group=1, topk_group=1,
            scaling=2.827, rope_theta=50000.0,
            rope_scaling={"beta_fast": 1.0, "beta_slow": 1.0, "factor": 32.0, "mscale": 1.0,
                          "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                          "type": "yarn"},
            max_pos=131072)


def spec(L, E, moe_i=MOE_I):
    s = {"model.embed_tokens.weight": ((VOCAB, H), 1.0, 0.0),
         "lm_head.weight": ((VOCAB, H), 0.3, 0.0),
         "model.norm.weight": ((H,), 0.2, 1.0)}
    for i in range(L):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = ((H,), 0.2, 1.0)
        s[p + "post_attention_layernorm.weight"] = ((H,), 0.2, 1.0)
        a = p + "self_attn."
        s[a + "q_a_proj.weight"] = ((QL, H), 0.2, 0.0)
        s[a + "q_a_layernorm.weight"] = ((QL,), 0.2, 1.0)
        s[a + "q_b_proj.weight"] = ((NH * (NOPE + ROPE), QL), 0.2, 0.0)
        s[a + "kv_a_proj_with_mqa.weight"] = ((KVL + ROPE, H), 0.2, 0.0)
        s[a + "kv_a_layernorm.weight"] = ((KVL,), 0.2, 1.0)
        s[a + "kv_b_proj.weight"] = ((NH * (NOPE + VH), KVL), 0.2, 0.0)
        s[a + "o_proj.weight"] = ((H, NH * VH), 0.2, 0.0)
        m = p + "mlp."
        if i < 1:   # first_k_dense_replace = 1
            s[m + "gate_proj.weight"] = ((DENSE_I, H), 0.2, 0.0)
            s[m + "up_proj.weight"] = ((DENSE_I, H), 0.2, 0.0)
            s[m + "down_proj.weight"] = ((H, DENSE_I), 0.2, 0.0)
        else:
            s[m + "gate.weight"] = ((E, H), 0.35, 0.0)
            s[m + "gate.e_score_correction_bias"] = ((E,), 0.15, 0.0, torch.float32)
            for e in range(E):
                s[m + f"experts.{e}.gate_proj.weight"] = ((moe_i, H), 0.2, 0.0)
                s[m + f"experts.{e}.up_proj.weight"] = ((moe_i, H), 0.2, 0.0)
                s[m + f"experts.{e}.down_proj.weight"] = ((H, moe_i), 0.2, 0.0)
            s[m + "shared_experts.gate_proj.weight"] = ((moe_i * N_SHARED, H), 0.2, 0.0)
            s[m + "shared_experts.up_proj.weight"] = ((moe_i * N_SHARED, H), 0.2, 0.0)
            s[m + "shared_experts.down_proj.weight"] = ((H, moe_i * N_SHARED), 0.2, 0.0)
    return s


def common_kwargs(p):
    return dict(vocab_size=VOCAB, hidden_size=H, intermediate_size=DENSE_I,
                moe_intermediate_size=p.get("moe_i", MOE_I), num_hidden_layers=p["layers"], num_attention_heads=NH,
                num_key_value_heads=NH, n_shared_experts=N_SHARED, n_routed_experts=p["E"],
                routed_scaling_factor=p["scaling"], kv_lora_rank=KVL, q_lora_rank=QL,
                qk_rope_head_dim=ROPE, v_head_dim=VH, qk_nope_head_dim=NOPE, n_group=p["n_group"],
                topk_group=p["topk_group"], num_experts_per_tok=p["k"], first_k_dense_replace=1,
                norm_topk_prob=True, hidden_act="silu", max_position_embeddings=p["max_pos"],
                initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True, bos_token_id=0,
                eos_token_id=IM_END, tie_word_embeddings=False, attention_bias=False,
                attention_dropout=0.0)


def ds_config():
    import transformers
    kw = common_kwargs(DS)
    try:
        return transformers.DeepseekV3Config(rope_parameters=dict(DS["rope"]), rope_interleave=True,
                                             scoring_func="sigmoid", topk_method="noaux_tc", **kw)
    except Exception as e:  # noqa: BLE001
        print("  DeepseekV3Config rejected scoring_func/topk_method:", e)
        return transformers.DeepseekV3Config(rope_parameters=dict(DS["rope"]), rope_interleave=True, **kw)


def kimi_legacy_config(p=KIMI):
    """config.json in the form of the published Kimi K2 (legacy keys, model_type kimi_k2)."""
    kw = common_kwargs(p)
    c = {"architectures": ["DeepseekV3ForCausalLM"], "aux_loss_alpha": 0.001, "ep_size": 1,
         "model_type": "kimi_k2", "moe_layer_freq": 1, "num_nextn_predict_layers": 0,
         "pretraining_tp": 1, "rope_theta": p["rope_theta"],
         "rope_scaling": dict(p["rope_scaling"]), "scoring_func": "sigmoid", "seq_aux": True,
         "topk_method": "noaux_tc", "torch_dtype": "bfloat16", "transformers_version": "4.48.3"}
    c.update(kw)
    return dict(sorted(c.items()))


def load_kimi_config(d):
    import transformers
    with open(os.path.join(d, "config.json")) as f:
        raw = json.load(f)
    try:
        cfg = transformers.DeepseekV3Config.from_pretrained(d)
        how = "DeepseekV3Config.from_pretrained"
    except Exception as e:  # noqa: BLE001
        print("  DeepseekV3Config.from_pretrained failed on the legacy file:", repr(e)[:300])
        import dataclasses
        import inspect
        C = transformers.DeepseekV3Config
        known = ({f.name for f in dataclasses.fields(C)} if dataclasses.is_dataclass(C)
                 else set(inspect.signature(C.__init__).parameters))
        known |= {"rope_scaling", "rope_theta"}
        raw2 = {k: v for k, v in raw.items() if k in known}
        cfg = C(**raw2)
        how = "DeepseekV3Config(**known keys of the legacy dict)"
    # transformers picks its checkpoint conversions (per-expert -> fused experts) by the
    # config's model_type; a config read from the Kimi file keeps "kimi_k2", which has no
    # conversion entry, so the per-expert tensors would be left unloaded.  Load as deepseek_v3.
    seen = getattr(cfg, "model_type", None)
    try:
        cfg.model_type = "deepseek_v3"
    except Exception:  # noqa: BLE001
        object.__setattr__(cfg, "model_type", "deepseek_v3")
    how += f" (model_type read as {seen!r}, set to 'deepseek_v3' for loading)"
    return cfg, how


def check_config(model, rope_expected):
    c = model.config
    rp = dict(c.rope_parameters)
    for k, v in rope_expected.items():
        if k == "type":
            assert rp["rope_type"] == v, rp
        else:
            assert rp.get(k) == v, (k, rp)
    att = model.model.layers[0].self_attn
    mscale = 0.1 * rp["mscale_all_dim"] * math.log(rp["factor"]) + 1.0
    want = (NOPE + ROPE) ** -0.5 * mscale * mscale
    assert abs(att.scaling - want) < 1e-9, (att.scaling, want)
    assert bool(getattr(c, "rope_interleave", True)), "rope_interleave must be true"
    return {"rope_parameters": rp, "inv_freq": model.model.rotary_emb.inv_freq.tolist(),
            "attention_scaling_cos_sin": float(model.model.rotary_emb.attention_scaling),
            "softmax_scale": att.scaling, "rope_interleave": bool(getattr(c, "rope_interleave", None))}


# ----------------------------------------------------------------------------------------
# FP8 (DeepSeek-V3 block format)
# ----------------------------------------------------------------------------------------

def is_fp8_target(name, t):
    """As in the published DeepSeek-V3 checkpoint: every 2-D linear weight of attention and MLP
    (q_a/q_b/kv_a_proj_with_mqa/kv_b/o, dense, routed and shared experts); not the router
    (mlp.gate.weight), norms, embeddings or lm_head."""
    return (t.dim() == 2 and name.endswith(".weight") and not name.endswith("mlp.gate.weight")
            and (".self_attn." in name or ".mlp." in name))


def fp8_quantize(w):
    """128x128 blocks (the last ones partial): scale_inv = amax/448, q = w/scale_inv in e4m3fn.
    Dequantisation is q * scale_inv[i // 128, j // 128] (DeepSeek's weight_dequant)."""
    wf = w.float()
    R, C = wf.shape
    br, bc = -(-R // FP8_BLOCK), -(-C // FP8_BLOCK)
    q = torch.empty(R, C, dtype=torch.float8_e4m3fn)
    s = torch.empty(br, bc, dtype=torch.float32)
    for i in range(br):
        for j in range(bc):
            blk = wf[i * FP8_BLOCK:(i + 1) * FP8_BLOCK, j * FP8_BLOCK:(j + 1) * FP8_BLOCK]
            sc = (blk.abs().max() / FP8_MAX).clamp(min=1e-12)
            q[i * FP8_BLOCK:(i + 1) * FP8_BLOCK, j * FP8_BLOCK:(j + 1) * FP8_BLOCK] = \
                (blk / sc).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
            s[i, j] = sc
    return q, s


def fp8_dequantize(q, s):
    R, C = q.shape
    full = s.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)[:R, :C]
    return q.float() * full


QUANT_CONFIG = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                "weight_block_size": [FP8_BLOCK, FP8_BLOCK]}


def make_fp8(canon):
    stored, deq = {}, {}
    for k, v in canon.items():
        if is_fp8_target(k, v):
            q, s = fp8_quantize(v)
            stored[k] = q
            stored[k[:-len("weight")] + "weight_scale_inv"] = s
            deq[k] = fp8_dequantize(q, s)
        else:
            stored[k] = v
            deq[k] = v.float()
    return stored, deq


# ----------------------------------------------------------------------------------------
# builders
# ----------------------------------------------------------------------------------------

def build_deepseek(out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    import transformers
    cls = transformers.DeepseekV3ForCausalLM
    sp = spec(DS["layers"], DS["E"])
    req = {"bias_changes_choice_frac": 0.05, "group_limit_changes_choice_frac": 0.05}

    def attempt(seed):
        tgt = os.path.join(work, f"ds_{seed}")
        _, canon = make_weights(sp, seed)
        res = write_and_evaluate(tgt, ds_config(), ["DeepseekV3ForCausalLM"], canon, cls, prompt_ids, ntok,
                                 DS["k"], DS["k2"], "deepseek", req)
        print(f"[deepseek_v3_tiny] seed {seed}: {res['q']}")
        if not res["q"]["ok"]:
            return False, None
        # the FP8 variant must pass too (its golden comes from the dequantised weights)
        ftgt = os.path.join(work, f"ds_fp8deq_{seed}")
        stored, deq = make_fp8(canon)
        fres = write_and_evaluate(ftgt, ds_config(), ["DeepseekV3ForCausalLM"],
                                  {k: v.contiguous() for k, v in deq.items()}, cls, prompt_ids, ntok,
                                  DS["k"], DS["k2"], "deepseek", {"bias_changes_choice_frac": 0.05})
        print(f"[deepseek_v3_fp8] seed {seed}: {fres['q']}")
        return fres["q"]["ok"], (tgt, canon, res, ftgt, stored, deq, fres)

    seed, (src, canon, res, fsrc, stored, deq, fres) = pick_seed("deepseek_v3_tiny", seed0, attempt, n_seeds)
    infos = {}
    # --- bf16 dataset
    d, spi = write_dataset(out, "deepseek_v3_tiny", src, cls, canon, tok_dir, prompt_ids, res)
    rl = load_lm(d, cls)
    with torch.no_grad():
        f = rl(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
    res["chk"]["dataset_reload_maxdiff"] = float((f - res["full"]).abs().max())
    infos["deepseek_v3_tiny"] = {"seed": seed, "quality": res["q"], "checks": res["chk"],
                                 "greedy_ids": res["greedy"], "save_pretrained": spi,
                                 "config_seen": check_config(res["model"], DS["rope"])}
    print("[deepseek_v3_tiny] checks:", res["chk"], "save_pretrained:", spi)
    # --- FP8 dataset
    d8 = os.path.join(out, "deepseek_v3_fp8")
    os.makedirs(d8)
    with open(os.path.join(d, "config.json")) as fh:
        cj = json.load(fh)
    cj["quantization_config"] = dict(QUANT_CONFIG)
    write_json(dict(sorted(cj.items())), os.path.join(d8, "config.json"))
    if os.path.exists(os.path.join(d, "generation_config.json")):
        shutil.copy(os.path.join(d, "generation_config.json"), d8)
    save_st(stored, os.path.join(d8, "model.safetensors"))
    copy_tok(tok_dir, d8)
    finish_golden(d8, prompt_ids, fres, with_decode=False)
    qinfo = {"seed": seed, "quality": fres["q"], "checks": fres["chk"], "greedy_ids": fres["greedy"],
             "golden_from": "dequantised weights (q * weight_scale_inv per 128x128 block) in float32",
             "fp8_tensors": sum(1 for k in stored if k.endswith("weight_scale_inv")),
             "scale_shapes": {k: list(v.shape) for k, v in stored.items()
                              if k.endswith("weight_scale_inv") and ".layers.0." in k},
             "rel_logit_change_vs_bf16": float((fres["full"] - res["full"]).norm() / res["full"].norm())}
    qinfo["transformers_fp8_dequantize_path"] = hf_fp8_crosscheck(d8, deq, prompt_ids, fres["full"])
    infos["deepseek_v3_fp8"] = qinfo
    print("[deepseek_v3_fp8]", json.dumps({k: v for k, v in qinfo.items() if k != "quality"}, default=str))
    return infos


def hf_fp8_crosscheck(d8, deq, prompt_ids, golden):
    """Load the FP8 directory through transformers' own FP8 dequantize path and compare."""
    import transformers
    out = {}
    try:
        qc = transformers.FineGrainedFP8Config(dequantize=True, weight_block_size=(FP8_BLOCK, FP8_BLOCK))
        m = transformers.DeepseekV3ForCausalLM.from_pretrained(
            d8, dtype=torch.float32, attn_implementation="eager", quantization_config=qc)
        m.eval()
        sd = m.state_dict()
        diffs = {}
        for k, v in deq.items():
            if k in sd and ".mlp.experts." not in k:
                diffs[k] = float((sd[k].float() - v).abs().max())
        out["max_weight_diff"] = max(diffs.values()) if diffs else None
        out["weights_differing"] = sorted(k for k, v in diffs.items() if v > 0)[:12]
        out["param_dtypes"] = sorted({str(v.dtype) for v in sd.values()})
        with torch.no_grad():
            lg = m.float()(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
        out["logits_maxdiff_vs_golden"] = float((lg - golden).abs().max())
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)[:500]
    return out


def evaluate_kimi(tgt, cls, prompt_ids, ntok, k, k2):
    """evaluate() of the Kimi checkpoint in tgt, its legacy config.json read through
    load_kimi_config: as written, and with k2 experts per token.  Returns (evaluate's result,
    how the config was loaded)."""
    cfg, how = load_kimi_config(tgt)
    cfg2, _ = load_kimi_config(tgt)
    cfg2.num_experts_per_tok = k2
    res = evaluate(tgt, cls, prompt_ids, ntok, k, k2, "deepseek", {"bias_changes_choice_frac": 0.05},
                   load_kw={"config": cfg}, load_kw2={"config": cfg2})
    return res, how


def build_kimi(out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    import transformers
    cls = transformers.DeepseekV3ForCausalLM
    sp = spec(KIMI["layers"], KIMI["E"])

    def attempt(seed):
        tgt = os.path.join(work, f"kimi_{seed}")
        os.makedirs(tgt)
        _, canon = make_weights(sp, seed)
        write_json(kimi_legacy_config(), os.path.join(tgt, "config.json"))
        save_st(canon, os.path.join(tgt, "model.safetensors"))
        res, how = evaluate_kimi(tgt, cls, prompt_ids, ntok, KIMI["k"], KIMI["k2"])
        print(f"[kimi_k2_tiny] seed {seed}: {res['q']} (config via {how})")
        return res["q"]["ok"], (tgt, canon, res, how)

    seed, (src, canon, res, how) = pick_seed("kimi_k2_tiny", seed0, attempt, n_seeds)
    d = os.path.join(out, "kimi_k2_tiny")
    os.makedirs(d)
    shutil.copy(os.path.join(src, "config.json"), d)
    shutil.copy(os.path.join(src, "model.safetensors"), d)
    copy_tok(tok_dir, d)
    finish_golden(d, prompt_ids, res)
    exp = {"type": "yarn", "rope_theta": KIMI["rope_theta"], "factor": 32.0, "beta_fast": 1.0,
           "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
           "original_max_position_embeddings": 4096}
    info = {"seed": seed, "quality": res["q"], "checks": res["chk"], "greedy_ids": res["greedy"],
            "config_loaded_via": how, "config_seen": check_config(res["model"], exp)}
    print("[kimi_k2_tiny] checks:", res["chk"])
    return {"kimi_k2_tiny": info}
