"""Mixtral and gpt-oss (bf16 and MXFP4) reference datasets."""

import json
import math
import os
import shutil

import torch

from ref_common import (H, IM_END, VOCAB, copy_tok, finish_golden, load_lm, make_weights, pick_seed,
                        save_st, write_and_evaluate, write_dataset, write_json)

# ----------------------------------------------------------------------------------------
# Mixtral
# ----------------------------------------------------------------------------------------

MX = dict(L=2, NH=4, NKV=2, HD=16, E=8, k=2, k2=1, I=32)


def mixtral_spec():
    s = {"model.embed_tokens.weight": ((VOCAB, H), 1.0, 0.0),
         "lm_head.weight": ((VOCAB, H), 0.3, 0.0),
         "model.norm.weight": ((H,), 0.2, 1.0)}
    for i in range(MX["L"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = ((H,), 0.2, 1.0)
        s[p + "post_attention_layernorm.weight"] = ((H,), 0.2, 1.0)
        s[p + "self_attn.q_proj.weight"] = ((MX["NH"] * MX["HD"], H), 0.2, 0.0)
        s[p + "self_attn.k_proj.weight"] = ((MX["NKV"] * MX["HD"], H), 0.2, 0.0)
        s[p + "self_attn.v_proj.weight"] = ((MX["NKV"] * MX["HD"], H), 0.2, 0.0)
        s[p + "self_attn.o_proj.weight"] = ((H, MX["NH"] * MX["HD"]), 0.2, 0.0)
        m = p + "block_sparse_moe."
        s[m + "gate.weight"] = ((MX["E"], H), 0.35, 0.0)
        for e in range(MX["E"]):
            s[m + f"experts.{e}.w1.weight"] = ((MX["I"], H), 0.2, 0.0)   # gate
            s[m + f"experts.{e}.w2.weight"] = ((H, MX["I"]), 0.2, 0.0)   # down
            s[m + f"experts.{e}.w3.weight"] = ((MX["I"], H), 0.2, 0.0)   # up
    return s


def mixtral_config():
    import transformers
    kw = dict(vocab_size=VOCAB, hidden_size=H, intermediate_size=MX["I"], num_hidden_layers=MX["L"],
              num_attention_heads=MX["NH"], num_key_value_heads=MX["NKV"], hidden_act="silu",
              max_position_embeddings=4096, initializer_range=0.02, rms_norm_eps=1e-5, use_cache=True,
              bos_token_id=0, eos_token_id=IM_END, tie_word_embeddings=False,
              rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
              sliding_window=None, attention_dropout=0.0, num_experts_per_tok=MX["k"],
              num_local_experts=MX["E"], output_router_logits=False, router_aux_loss_coef=0.02,
              router_jitter_noise=0.0)
    try:
        return transformers.MixtralConfig(head_dim=MX["HD"], **kw)
    except Exception as e:  # noqa: BLE001
        print("  MixtralConfig without head_dim:", e)
        return transformers.MixtralConfig(**kw)


def build_mixtral(out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    import transformers
    cls = transformers.MixtralForCausalLM
    sp = mixtral_spec()

    def attempt(seed):
        tgt = os.path.join(work, f"mixtral_{seed}")
        _, canon = make_weights(sp, seed)
        res = write_and_evaluate(tgt, mixtral_config(), ["MixtralForCausalLM"], canon, cls, prompt_ids, ntok,
                                 MX["k"], MX["k2"], "softmax")
        print(f"[mixtral_tiny] seed {seed}: {res['q']}")
        return res["q"]["ok"], (tgt, canon, res)

    seed, (src, canon, res) = pick_seed("mixtral_tiny", seed0, attempt, n_seeds)
    d, spi = write_dataset(out, "mixtral_tiny", src, cls, canon, tok_dir, prompt_ids, res)
    c = res["model"].config
    assert c.sliding_window is None, c.sliding_window
    info = {"seed": seed, "quality": res["q"], "checks": res["chk"], "greedy_ids": res["greedy"],
            "save_pretrained": spi, "config_seen": {"rope_parameters": dict(c.rope_parameters),
                                                    "head_dim": getattr(c, "head_dim", None),
                                                    "sliding_window": c.sliding_window}}
    print("[mixtral_tiny] checks:", res["chk"], "save_pretrained:", spi)
    return {"mixtral_tiny": info}


# ----------------------------------------------------------------------------------------
# gpt-oss
# ----------------------------------------------------------------------------------------

GO = dict(L=2, NH=4, NKV=2, HD=16, E=8, k=4, k2=2, I=32, window=8)
GO_ROPE = {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
           "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 4096}
MXFP4_QC = {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"],
            "quant_method": "mxfp4"}
FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def gpt_oss_spec():
    s = {"model.embed_tokens.weight": ((VOCAB, H), 1.0, 0.0),
         "lm_head.weight": ((VOCAB, H), 0.3, 0.0),
         "model.norm.weight": ((H,), 0.2, 1.0)}
    NH, NKV, HD, E, I = GO["NH"], GO["NKV"], GO["HD"], GO["E"], GO["I"]
    for i in range(GO["L"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = ((H,), 0.2, 1.0)
        s[p + "post_attention_layernorm.weight"] = ((H,), 0.2, 1.0)
        a = p + "self_attn."
        s[a + "q_proj.weight"] = ((NH * HD, H), 0.2, 0.0)
        s[a + "q_proj.bias"] = ((NH * HD,), 0.1, 0.0)
        s[a + "k_proj.weight"] = ((NKV * HD, H), 0.2, 0.0)
        s[a + "k_proj.bias"] = ((NKV * HD,), 0.1, 0.0)
        s[a + "v_proj.weight"] = ((NKV * HD, H), 0.2, 0.0)
        s[a + "v_proj.bias"] = ((NKV * HD,), 0.1, 0.0)
        s[a + "o_proj.weight"] = ((H, NH * HD), 0.2, 0.0)
        s[a + "o_proj.bias"] = ((H,), 0.1, 0.0)
        s[a + "sinks"] = ((NH,), 1.0, 0.0)
        m = p + "mlp."
        s[m + "router.weight"] = ((E, H), 0.35, 0.0)
        s[m + "router.bias"] = ((E,), 0.1, 0.0)
        s[m + "experts.gate_up_proj"] = ((E, H, 2 * I), 0.5, 0.0)    # columns: gate, up interleaved
        s[m + "experts.gate_up_proj_bias"] = ((E, 2 * I), 0.1, 0.0)
        s[m + "experts.down_proj"] = ((E, I, H), 0.2, 0.0)
        s[m + "experts.down_proj_bias"] = ((E, H), 0.1, 0.0)
    return s


def gpt_oss_config():
    import transformers
    kw = dict(num_hidden_layers=GO["L"], num_local_experts=GO["E"], vocab_size=VOCAB, hidden_size=H,
              intermediate_size=GO["I"], head_dim=GO["HD"], num_attention_heads=GO["NH"],
              num_key_value_heads=GO["NKV"], sliding_window=GO["window"], tie_word_embeddings=False,
              hidden_act="silu", initializer_range=0.02, max_position_embeddings=131072,
              rms_norm_eps=1e-5, rope_parameters=dict(GO_ROPE), attention_dropout=0.0,
              num_experts_per_tok=GO["k"], router_aux_loss_coef=0.9, output_router_logits=False,
              use_cache=True, layer_types=["sliding_attention", "full_attention"],
              pad_token_id=0, eos_token_id=IM_END, attention_bias=True)
    try:
        return transformers.GptOssConfig(swiglu_limit=7.0, **kw)
    except Exception as e:  # noqa: BLE001
        print("  GptOssConfig without swiglu_limit:", e)
        return transformers.GptOssConfig(**kw)


def mxfp4_quantize(rows):
    """rows: float32 [E, R, C] (R output features, C inputs, C % 32 == 0).
    Returns blocks uint8 [E, R, C/32, 16] (element 2b in the low nibble, 2b+1 in the high),
    scales uint8 [E, R, C/32] (e8m0: 2**(s - 127)) and the dequantised float32 rows."""
    E, R, C = rows.shape
    G = C // 32
    x = rows.reshape(E, R, G, 32)
    amax = x.abs().amax(-1)
    e = torch.ceil(torch.log2(amax.clamp(min=2.0 ** -120) / 6.0)).clamp(-127, 127)
    y = x / torch.exp2(e).unsqueeze(-1)
    mags = torch.tensor(FP4_VALUES[:8])
    idx = (y.abs().unsqueeze(-1) - mags).abs().argmin(-1)                       # nearest magnitude
    code = idx + 8 * ((y < 0) & (idx > 0)).long()
    blocks = (code[..., 0::2] | (code[..., 1::2] << 4)).to(torch.uint8).contiguous()
    scales = (e + 127).to(torch.uint8).contiguous()
    deq = torch.tensor(FP4_VALUES)[code] * torch.exp2(e).unsqueeze(-1)
    return blocks, scales, deq.reshape(E, R, C)


def make_mxfp4(canon):
    stored, deq = {}, {}
    for k, v in canon.items():
        if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj"):
            rows = v.float().transpose(1, 2).contiguous()      # [E, out, in]
            b, s, d = mxfp4_quantize(rows)
            stored[k + "_blocks"], stored[k + "_scales"] = b, s
            w = d.transpose(1, 2).contiguous()                 # back to the param layout
            assert torch.equal(w.to(torch.bfloat16).float(), w), "dequantised value not exact in bf16"
            deq[k] = w.to(torch.bfloat16)
        else:
            stored[k] = v
            deq[k] = v
    return stored, deq


def check_gpt_oss(model):
    c = model.config
    att = [l.self_attn for l in model.model.layers]
    assert att[0].sliding_window == GO["window"] and att[1].sliding_window is None, \
        [a.sliding_window for a in att]
    rot = model.model.rotary_emb
    want = 0.1 * math.log(GO_ROPE["factor"]) + 1.0
    assert abs(rot.attention_scaling - want) < 1e-6, (rot.attention_scaling, want)
    ex = model.model.layers[0].mlp.experts
    return {"rope_parameters": dict(c.rope_parameters), "inv_freq": rot.inv_freq.tolist(),
            "attention_scaling_cos_sin": float(rot.attention_scaling),
            "layer_types": list(c.layer_types), "sliding_window": c.sliding_window,
            "experts_alpha_limit": [getattr(ex, "alpha", None), getattr(ex, "limit", None)]}


def build_gpt_oss(out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    import transformers
    cls = transformers.GptOssForCausalLM
    sp = gpt_oss_spec()
    req = {"clamped_frac": 0.005}

    def attempt(seed):
        tgt = os.path.join(work, f"gptoss_{seed}")
        _, canon = make_weights(sp, seed)
        res = write_and_evaluate(tgt, gpt_oss_config(), ["GptOssForCausalLM"], canon, cls, prompt_ids, ntok,
                                 GO["k"], GO["k2"], "gpt_oss", req)
        print(f"[gpt_oss_tiny] seed {seed}: {res['q']}")
        if not res["q"]["ok"]:
            return False, None
        ftgt = os.path.join(work, f"gptoss_mxfp4deq_{seed}")
        stored, deq = make_mxfp4(canon)
        fres = write_and_evaluate(ftgt, gpt_oss_config(), ["GptOssForCausalLM"], deq, cls, prompt_ids, ntok,
                                  GO["k"], GO["k2"], "gpt_oss", req)
        print(f"[gpt_oss_mxfp4] seed {seed}: {fres['q']}")
        return fres["q"]["ok"], (tgt, canon, res, ftgt, stored, deq, fres)

    seed, (src, canon, res, fsrc, stored, deq, fres) = pick_seed("gpt_oss_tiny", seed0, attempt, n_seeds)
    infos = {}
    d, spi = write_dataset(out, "gpt_oss_tiny", src, cls, canon, tok_dir, prompt_ids, res)
    infos["gpt_oss_tiny"] = {"seed": seed, "quality": res["q"], "checks": res["chk"],
                             "greedy_ids": res["greedy"], "save_pretrained": spi,
                             "config_seen": check_gpt_oss(res["model"])}
    print("[gpt_oss_tiny] checks:", res["chk"], "save_pretrained:", spi)
    # --- MXFP4 dataset
    d4 = os.path.join(out, "gpt_oss_mxfp4")
    os.makedirs(d4)
    with open(os.path.join(d, "config.json")) as fh:
        cj = json.load(fh)
    cj["quantization_config"] = json.loads(json.dumps(MXFP4_QC))
    write_json(dict(sorted(cj.items())), os.path.join(d4, "config.json"))
    if os.path.exists(os.path.join(d, "generation_config.json")):
        shutil.copy(os.path.join(d, "generation_config.json"), d4)
    save_st(stored, os.path.join(d4, "model.safetensors"))
    copy_tok(tok_dir, d4)
    finish_golden(d4, prompt_ids, fres, with_decode=False)
    qinfo = {"seed": seed, "quality": fres["q"], "checks": fres["chk"], "greedy_ids": fres["greedy"],
             "golden_from": "dequantised experts (FP4 value * 2**(scale-127)), exact in bf16, float32 arithmetic",
             "rel_logit_change_vs_bf16": float((fres["full"] - res["full"]).norm() / res["full"].norm()),
             "shapes": {k: [str(v.dtype), list(v.shape)] for k, v in stored.items()
                        if ".layers.0.mlp.experts" in k}}
    qinfo["transformers_mxfp4_dequantize_path"] = hf_mxfp4_crosscheck(d4, deq, prompt_ids, fres["full"])
    infos["gpt_oss_mxfp4"] = qinfo
    print("[gpt_oss_mxfp4]", json.dumps({k: v for k, v in qinfo.items() if k != "quality"}, default=str))
    return infos


def hf_mxfp4_crosscheck(d4, deq, prompt_ids, golden):
    import transformers
    out = {}
    try:
        qc = transformers.Mxfp4Config(dequantize=True)
        m = transformers.GptOssForCausalLM.from_pretrained(d4, dtype=torch.float32,
                                                           attn_implementation="eager",
                                                           quantization_config=qc)
        m.eval()
        sd = m.state_dict()
        diffs = {k: float((sd[k].float() - v.float()).abs().max()) for k, v in deq.items() if k in sd}
        out["max_weight_diff"] = max(diffs.values())
        out["missing_in_model"] = sorted(k for k in deq if k not in sd)[:8]
        out["param_dtypes"] = sorted({str(v.dtype) for v in sd.values()})
        with torch.no_grad():
            lg = m.float()(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
        out["logits_maxdiff_vs_golden"] = float((lg - golden).abs().max())
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)[:500]
    return out
