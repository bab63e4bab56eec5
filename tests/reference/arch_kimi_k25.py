"""Kimi K2.5 reference dataset (kimi_k25_int4): the multimodal wrapper
(KimiK25ForConditionalGeneration, model_type kimi_k25) around a Kimi K2 / DeepSeek-V3 text
model, stored as the published checkpoint stores it:

- every text weight under the wrapper's prefix "language_model." (model.*, lm_head.weight);
- vision weights (vision_tower.*, mm_projector.*) present, which moestream must ignore;
- routed experts as compressed-tensors "pack-quantized" INT4, symmetric, group size 32:
  <proj>.weight_packed (int32 [rows][cols / 8]), <proj>.weight_scale (bf16
  [rows][cols / 32]) and <proj>.weight_shape (int64 [2] = [rows, cols]);
- attention, shared experts, the dense MLP and lm_head in bf16 (the config's `ignore`).

The compressed-tensors conventions (compressed_tensors pack_to_int32 / unpack_from_int32):
a signed value q in [-8, 7] is stored as the unsigned nibble q + 8; element c of a row lies in
int32 word c // 8 at bits 4 * (c % 8) (the first element in the least significant nibble); a
row is padded with zero nibbles to a whole word. The weight is q * weight_scale[r][c // 32].

The golden is transformers' DeepseekV3ForCausalLM (float32, eager) run on the dequantised
weights, loaded from a plain Kimi K2 directory holding them.  The expert moe_intermediate_size
is 96: the down projections have 3 groups of 32 per row (an odd count), gate and up 2.
"""

import json
import os
import shutil

import torch

import arch_deepseek
from arch_deepseek import KIMI, evaluate_kimi, kimi_legacy_config, load_kimi_config, spec
from ref_common import H, IM_END, copy_tok, finish_golden, make_weights, pick_seed, save_st, write_json

KIMI25 = dict(KIMI, name="kimi_k25_int4", moe_i=96)
GROUP = 32
PREFIX = "language_model."

QUANT_CONFIG = {
    "config_groups": {"group_0": {
        "input_activations": None, "output_activations": None, "targets": ["Linear"],
        "weights": {"actorder": None, "block_structure": None, "dynamic": False,
                    "group_size": GROUP, "num_bits": 4, "observer": "minmax",
                    "observer_kwargs": {}, "strategy": "group", "symmetric": True,
                    "type": "int"}}},
    "format": "pack-quantized",
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*",
               "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
    "kv_cache_scheme": None,
    "quant_method": "compressed-tensors",
    "quantization_status": "compressed",
}


def quantize_int4(w):
    """Symmetric INT4 per group of 32 inputs, as compressed-tensors' minmax observer does:
    scale = max|w| / 7.5 (half the 15-step range), held in bf16; q = round(w / scale) in
    [-8, 7], computed with the bf16 scale so that q * scale is what the file means."""
    w = w.float()
    R, C = w.shape
    g = w.view(R, C // GROUP, GROUP)
    scale = (g.abs().amax(dim=2) / 7.5).clamp(min=1e-6).to(torch.bfloat16)
    q = torch.round(g / scale.float().unsqueeze(2)).clamp(-8, 7).to(torch.int8).view(R, C)
    return q, scale


def pack_int4(q):
    """int8 [R][C] in [-8, 7] -> int32 [R][C / 8], element c at bits 4 * (c % 8) of word c // 8."""
    R, C = q.shape
    u = (q.to(torch.int64) + 8).view(R, C // 8, 8)
    shifts = torch.arange(8, dtype=torch.int64) * 4
    words = (u << shifts).sum(dim=2)
    words = torch.where(words >= 2 ** 31, words - 2 ** 32, words)  # as a signed int32
    return words.to(torch.int32).contiguous()


def unpack_int4(packed, cols):
    """The inverse, written independently of pack_int4 (nibble by nibble)."""
    R, W = packed.shape
    out = torch.empty(R, W * 8, dtype=torch.int8)
    p = packed.to(torch.int64) & 0xFFFFFFFF
    for i in range(8):
        out[:, i::8] = (((p >> (4 * i)) & 0xF) - 8).to(torch.int8)
    return out[:, :cols]


def dequantize(q, scale):
    return q.float() * scale.float().repeat_interleave(GROUP, dim=1)


def is_routed_expert(name):
    return ".mlp.experts." in name and name.endswith(".weight")


def make_int4(canon):
    """(stored tensors with the wrapper's names, dequantised text weights, checks)."""
    stored, deq, checks = {}, {}, {"max_unpack_diff": 0, "ct_unpack": None}
    try:
        from compressed_tensors.compressors.quantized_compressors.pack_quantized import (
            pack_to_int32, unpack_from_int32)
    except Exception as e:  # noqa: BLE001
        pack_to_int32 = unpack_from_int32 = None
        checks["ct_unpack"] = f"compressed_tensors not importable: {e!r}"[:200]
    ct_diffs = []
    for k, v in canon.items():
        if not is_routed_expert(k):
            stored[PREFIX + k] = v
            deq[k] = v
            continue
        q, scale = quantize_int4(v)
        packed = pack_int4(q)
        back = unpack_int4(packed, v.shape[1])
        checks["max_unpack_diff"] = max(checks["max_unpack_diff"], int((back.int() - q.int()).abs().max()))
        if pack_to_int32 is not None:
            ct_diffs.append(int((pack_to_int32(q, 4) != packed).sum()))
            ct_diffs.append(int((unpack_from_int32(packed, 4, torch.Size(v.shape)) != q).sum()))
        base = PREFIX + k[:-len("weight")]
        stored[base + "weight_packed"] = packed
        stored[base + "weight_scale"] = scale
        stored[base + "weight_shape"] = torch.tensor(list(v.shape), dtype=torch.int64)
        deq[k] = dequantize(q, scale)
    if ct_diffs:
        checks["ct_unpack"] = {"mismatching_elements": sum(ct_diffs), "tensors_compared": len(ct_diffs) // 2}
    assert checks["max_unpack_diff"] == 0, checks
    return stored, deq, checks


def vision_weights(seed):
    """A few tensors in the places the published checkpoint keeps its vision tower and
    projector; the text model never reads them."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"vision_tower.patch_embed.proj.weight": (32, 3, 14, 14),
              "vision_tower.patch_embed.proj.bias": (32,),
              "vision_tower.encoder.blocks.0.wqkv.weight": (96, 32),
              "vision_tower.encoder.blocks.0.wo.weight": (32, 32),
              "vision_tower.encoder.final_layernorm.weight": (32,),
              "mm_projector.pre_norm.weight": (32,),
              "mm_projector.proj.0.weight": (H, 128),
              "mm_projector.proj.2.weight": (H, H)}
    return {k: torch.randn(s, generator=g).to(torch.bfloat16) for k, s in shapes.items()}


def k25_config():
    text = kimi_legacy_config(KIMI25)
    text["quantization_config"] = json.loads(json.dumps(QUANT_CONFIG))
    text["architectures"] = ["DeepseekV3ForCausalLM"]
    return {
        "architectures": ["KimiK25ForConditionalGeneration"],
        "auto_map": {"AutoConfig": "configuration_kimi_k25.KimiK25Config",
                     "AutoModel": "modeling_kimi_k25.KimiK25ForConditionalGeneration",
                     "AutoModelForCausalLM": "modeling_kimi_k25.KimiK25ForConditionalGeneration"},
        "bos_token_id": text["bos_token_id"], "dtype": "bfloat16",
        "eos_token_id": text["eos_token_id"], "ignore_index": -100,
        "media_placeholder_token_id": 1000, "model_type": "kimi_k25", "pad_token_id": 0,
        "text_config": dict(sorted(text.items())), "tie_word_embeddings": False,
        "use_unified_vision_chunk": True,
        "video_placeholder": "<|kimi_k25_video_placeholder|>",
        "vision_config": {"init_pos_emb_height": 8, "init_pos_emb_time": 2, "init_pos_emb_width": 8,
                          "merge_kernel_size": [2, 2], "merge_type": "sd2_tpool",
                          "mm_hidden_size": 32, "mm_projector_type": "patchmerger",
                          "patch_size": 14, "pos_emb_type": "divided_fixed",
                          "projector_hidden_act": "gelu", "projector_ln_eps": 1e-05,
                          "text_hidden_size": H, "video_attn_type": "spatial_temporal",
                          "vt_hidden_size": 32, "vt_intermediate_size": 64,
                          "vt_num_attention_heads": 2, "vt_num_hidden_layers": 1},
    }


def build_kimi_k25(out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    import transformers
    cls = transformers.DeepseekV3ForCausalLM
    sp = spec(KIMI25["layers"], KIMI25["E"], KIMI25["moe_i"])

    def attempt(seed):
        tgt = os.path.join(work, f"kimi25_{seed}")
        os.makedirs(tgt)
        _, canon = make_weights(sp, seed)
        stored, deq, checks = make_int4(canon)
        write_json(kimi_legacy_config(KIMI25), os.path.join(tgt, "config.json"))
        save_st(deq, os.path.join(tgt, "model.safetensors"))
        res, how = evaluate_kimi(tgt, cls, prompt_ids, ntok, KIMI25["k"], KIMI25["k2"])
        print(f"[kimi_k25_int4] seed {seed}: {res['q']} (config via {how})")
        return res["q"]["ok"], (canon, stored, deq, checks, res, how)

    seed, (canon, stored, deq, checks, res, how) = pick_seed("kimi_k25_int4", seed0, attempt, n_seeds)
    d = os.path.join(out, "kimi_k25_int4")
    os.makedirs(d)
    write_json(k25_config(), os.path.join(d, "config.json"))
    stored.update(vision_weights(seed + 100000))
    save_st(stored, os.path.join(d, "model.safetensors"))
    copy_tok(tok_dir, d)
    finish_golden(d, prompt_ids, res)
    # How far INT4 moved the model: the logits of the unquantised bf16 experts.
    bf = os.path.join(work, "kimi25_bf16")
    os.makedirs(bf)
    write_json(kimi_legacy_config(KIMI25), os.path.join(bf, "config.json"))
    save_st(canon, os.path.join(bf, "model.safetensors"))
    cfg, _ = load_kimi_config(bf)
    from ref_common import load_lm
    m = load_lm(bf, cls, config=cfg)
    with torch.no_grad():
        full_bf16 = m(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0].float()
    info = {"seed": seed, "quality": res["q"], "checks": res["chk"], "greedy_ids": res["greedy"],
            "config_loaded_via": how, "int4_checks": checks, "group_size": GROUP,
            "golden_from": "dequantised experts (q * weight_scale per group of 32) in float32",
            "rel_logit_change_vs_bf16_experts":
                float((res["full"] - full_bf16).norm() / full_bf16.norm()),
            "packed_tensors": sum(1 for k in stored if k.endswith("weight_packed"))}
    print("[kimi_k25_int4]", json.dumps({k: v for k, v in info.items() if k != "quality"}, default=str))
    return {"kimi_k25_int4": info}


__all__ = ["build_kimi_k25", "arch_deepseek"]
