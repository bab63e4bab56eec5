"""Qwen3.5-MoE (text + multimodal-wrapper layout) and Qwen3-Next reference datasets.

Both are hybrids: Gated DeltaNet linear attention in 3 of 4 layers, gated full attention
with partial RoPE in the 4th, (1 + w) RMSNorms, a shared expert behind a sigmoid gate.
Qwen3.5 stores the linear-attention input projections separately (in_proj_qkv / z / b / a);
Qwen3-Next stores them fused per key head (in_proj_qkvz / in_proj_ba).
"""

import json
import os
import shutil

import torch

from ref_common import (H, IM_END, VOCAB, copy_tok, load_lm, pick_seed, save_st, tensor_table,
                        write_and_evaluate, write_config, write_dataset, write_json, make_weights)

LAYER_TYPES = ["linear_attention", "linear_attention", "linear_attention", "full_attention"]
NH, NKV, HD = 4, 2, 32              # full attention: heads, kv heads, head_dim
PARTIAL = 0.25                      # rotary dims = 8 of 32
NK, NV, DK, DV, CONV_K = 2, 4, 16, 16, 4   # linear attention: key/value heads and dims
KD, VD = NK * DK, NV * DV
E, TOP_K, TOP_K2, MOE_I, SHARED_I = 8, 4, 2, 16, 32
ROPE_THETA = 10000000.0


def spec(variant):
    """variant: 'qwen3_5' or 'qwen3_next'. Per-expert names (what save_pretrained writes)."""
    f32 = torch.float32 if variant == "qwen3_5" else torch.bfloat16   # Qwen3.5 keeps A_log, norm in F32
    s = {"model.embed_tokens.weight": ((VOCAB, H), 1.0, 0.0),
         "lm_head.weight": ((VOCAB, H), 0.3, 0.0),
         "model.norm.weight": ((H,), 0.2, 0.0)}                       # (1 + w) norm: w near 0
    for i, lt in enumerate(LAYER_TYPES):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = ((H,), 0.2, 0.0)
        s[p + "post_attention_layernorm.weight"] = ((H,), 0.2, 0.0)
        if lt == "linear_attention":
            a = p + "linear_attn."
            if variant == "qwen3_next":
                s[a + "in_proj_qkvz.weight"] = ((2 * KD + 2 * VD, H), 0.2, 0.0)
                s[a + "in_proj_ba.weight"] = ((2 * NV, H), 0.2, 0.0)
            else:
                s[a + "in_proj_qkv.weight"] = ((2 * KD + VD, H), 0.2, 0.0)
                s[a + "in_proj_z.weight"] = ((VD, H), 0.2, 0.0)
                s[a + "in_proj_b.weight"] = ((NV, H), 0.2, 0.0)
                s[a + "in_proj_a.weight"] = ((NV, H), 0.2, 0.0)
            s[a + "conv1d.weight"] = ((2 * KD + VD, 1, CONV_K), 0.3, 0.0)
            s[a + "dt_bias"] = ((NV,), 0.5, 0.0)
            s[a + "A_log"] = ((NV,), 0.5, -1.0, f32)
            s[a + "norm.weight"] = ((DV,), 0.2, 1.0, f32)              # gated norm: plain w
            s[a + "out_proj.weight"] = ((H, VD), 0.2, 0.0)
        else:
            a = p + "self_attn."
            s[a + "q_proj.weight"] = ((NH * HD * 2, H), 0.2, 0.0)      # per head: [query | gate]
            s[a + "k_proj.weight"] = ((NKV * HD, H), 0.2, 0.0)
            s[a + "v_proj.weight"] = ((NKV * HD, H), 0.2, 0.0)
            s[a + "o_proj.weight"] = ((H, NH * HD), 0.2, 0.0)
            s[a + "q_norm.weight"] = ((HD,), 0.2, 0.0)
            s[a + "k_norm.weight"] = ((HD,), 0.2, 0.0)
        m = p + "mlp."
        s[m + "gate.weight"] = ((E, H), 0.35, 0.0)
        for e in range(E):
            s[m + f"experts.{e}.gate_proj.weight"] = ((MOE_I, H), 0.2, 0.0)
            s[m + f"experts.{e}.up_proj.weight"] = ((MOE_I, H), 0.2, 0.0)
            s[m + f"experts.{e}.down_proj.weight"] = ((H, MOE_I), 0.2, 0.0)
        s[m + "shared_expert.gate_proj.weight"] = ((SHARED_I, H), 0.2, 0.0)
        s[m + "shared_expert.up_proj.weight"] = ((SHARED_I, H), 0.2, 0.0)
        s[m + "shared_expert.down_proj.weight"] = ((H, SHARED_I), 0.2, 0.0)
        s[m + "shared_expert_gate.weight"] = ((1, H), 0.2, 0.0)
    return s


def text_config(variant):
    import transformers
    rope = {"rope_type": "default", "rope_theta": ROPE_THETA, "partial_rotary_factor": PARTIAL}
    common = dict(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=len(LAYER_TYPES),
                  num_attention_heads=NH, num_key_value_heads=NKV, head_dim=HD, hidden_act="silu",
                  max_position_embeddings=4096, initializer_range=0.02, rms_norm_eps=1e-6,
                  use_cache=True, tie_word_embeddings=False, attention_bias=False,
                  attention_dropout=0.0, linear_conv_kernel_dim=CONV_K, linear_key_head_dim=DK,
                  linear_value_head_dim=DV, linear_num_key_heads=NK, linear_num_value_heads=NV,
                  moe_intermediate_size=MOE_I, shared_expert_intermediate_size=SHARED_I,
                  num_experts_per_tok=TOP_K, num_experts=E, output_router_logits=False,
                  router_aux_loss_coef=0.001, layer_types=list(LAYER_TYPES), eos_token_id=IM_END)
    if variant == "qwen3_5":
        rope.update({"mrope_section": [2, 1, 1], "mrope_interleaved": True})
        return transformers.Qwen3_5MoeTextConfig(rope_parameters=rope, **common)
    return transformers.Qwen3NextConfig(rope_parameters=rope, intermediate_size=96,
                                        decoder_sparse_step=1, norm_topk_prob=True,
                                        mlp_only_layers=[], **common)


def lm_class(variant):
    import transformers
    return transformers.Qwen3_5MoeForCausalLM if variant == "qwen3_5" else transformers.Qwen3NextForCausalLM


def check_config(model, variant):
    c = model.config
    assert list(c.layer_types) == LAYER_TYPES, c.layer_types
    rp = c.rope_parameters
    assert rp["rope_type"] == "default" and rp.get("partial_rotary_factor") == PARTIAL, rp
    inv = model.model.rotary_emb.inv_freq
    assert inv.numel() == int(HD * PARTIAL) // 2 and inv.dtype == torch.float32, inv
    return {"rope_parameters": dict(rp), "inv_freq": inv.tolist()}


def build(variant, name, out, work, tok_dir, prompt_ids, ntok, seed0, n_seeds):
    cls = lm_class(variant)
    arch = "Qwen3_5MoeForCausalLM" if variant == "qwen3_5" else "Qwen3NextForCausalLM"
    sp = spec(variant)

    def attempt(seed):
        tgt = os.path.join(work, f"{name}_{seed}")
        _, canon = make_weights(sp, seed)
        res = write_and_evaluate(tgt, text_config(variant), [arch], canon, cls, prompt_ids, ntok, TOP_K, TOP_K2,
                                 "softmax")
        print(f"[{name}] seed {seed}: {res['q']}")
        return res["q"]["ok"], (tgt, canon, res)

    seed, (src, canon, res) = pick_seed(name, seed0, attempt, n_seeds)
    d, spi = write_dataset(out, name, src, cls, canon, tok_dir, prompt_ids, res)
    rl = load_lm(d, cls)
    with torch.no_grad():
        f = rl(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
    res["chk"]["dataset_reload_maxdiff"] = float((f - res["full"]).abs().max())
    info = {"seed": seed, "quality": res["q"], "checks": res["chk"], "greedy_ids": res["greedy"],
            "save_pretrained": spi, "config_seen": check_config(res["model"], variant),
            "model_class": type(res["model"]).__name__}
    print(f"[{name}] checks: {res['chk']}")
    print(f"[{name}] save_pretrained: {spi}")
    return info, canon


def build_wrapped(out, tok_dir, prompt_ids, canon):
    """Qwen3.5 multimodal-wrapper layout: config model_type qwen3_5_moe with text_config,
    tensors under model.language_model.*, experts fused per layer as the published Qwen3.5
    checkpoints store them, lm_head.weight at the top, plus dummy vision / MTP tensors."""
    import transformers
    name = "qwen3_5_moe_wrapped"
    d = os.path.join(out, name)
    tiny = os.path.join(out, "qwen3_5_moe_tiny")
    os.makedirs(d)
    text = transformers.Qwen3_5MoeTextConfig.from_pretrained(tiny)
    vision = {"depth": 1, "hidden_size": 8, "hidden_act": "gelu_pytorch_tanh", "intermediate_size": 16,
              "num_heads": 2, "in_channels": 3, "patch_size": 4, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "out_hidden_size": H, "num_position_embeddings": 16}
    td = text.to_dict()
    for k in ("architectures", "transformers_version"):
        td.pop(k, None)
    wcfg = transformers.Qwen3_5MoeConfig(text_config=td, vision_config=vision,
                                         image_token_id=1021, video_token_id=1022,
                                         vision_start_token_id=1019, vision_end_token_id=1020,
                                         tie_word_embeddings=False)
    cj = write_config(wcfg, d, ["Qwen3_5MoeForConditionalGeneration"])
    t = {}
    for k, v in canon.items():
        if ".mlp.experts." in k:
            continue
        t[k.replace("model.", "model.language_model.", 1) if k.startswith("model.") else k] = v
    L = len(LAYER_TYPES)
    for i in range(L):
        p = f"model.layers.{i}.mlp.experts."
        gate = torch.stack([canon[p + f"{e}.gate_proj.weight"] for e in range(E)])
        up = torch.stack([canon[p + f"{e}.up_proj.weight"] for e in range(E)])
        down = torch.stack([canon[p + f"{e}.down_proj.weight"] for e in range(E)])
        q = f"model.language_model.layers.{i}.mlp.experts."
        t[q + "gate_up_proj"] = torch.cat([gate, up], dim=1).contiguous()   # [E, 2I, H]
        t[q + "down_proj"] = down.contiguous()                              # [E, H, I]
    g = torch.Generator().manual_seed(99)
    t["model.visual.patch_embed.proj.weight"] = (0.1 * torch.randn(8, 3, 2, 4, 4, generator=g)).to(torch.bfloat16)
    t["model.visual.merger.linear_fc2.weight"] = (0.1 * torch.randn(H, 32, generator=g)).to(torch.bfloat16)
    t["mtp.fc.weight"] = (0.1 * torch.randn(H, 2 * H, generator=g)).to(torch.bfloat16)
    save_st(t, os.path.join(d, "model.safetensors"))
    copy_tok(tok_dir, d)
    shutil.copy(os.path.join(tiny, "golden.safetensors"), os.path.join(d, "golden.safetensors"))
    if os.path.exists(os.path.join(tiny, "generation_config.json")):
        shutil.copy(os.path.join(tiny, "generation_config.json"), d)
    # verify: the text model loads from the wrapper directory and reproduces the golden exactly
    info = {"config_keys": sorted(cj)}
    from safetensors.torch import load_file
    gold = load_file(os.path.join(d, "golden.safetensors"))
    wc = transformers.AutoConfig.from_pretrained(d)
    info["autoconfig_class"] = type(wc).__name__
    m = load_lm(d, transformers.Qwen3_5MoeForCausalLM, config=wc.text_config,
                allow_unexpected=("model.visual.", "mtp.", "model.language_model.visual"))
    with torch.no_grad():
        f = m(input_ids=torch.tensor([prompt_ids]), use_cache=False).logits[0]
    info["causallm_from_wrapper_maxdiff"] = float((f - gold["logits"]).abs().max())
    assert info["causallm_from_wrapper_maxdiff"] == 0.0, info
    # what would save_pretrained write for this model (loaded from the wrapper layout)?
    import tempfile
    tmp = tempfile.mkdtemp()
    mb = load_lm(d, transformers.Qwen3_5MoeForCausalLM, dtype=torch.bfloat16, config=wc.text_config,
                 allow_unexpected=("model.visual.", "mtp."))
    mb.save_pretrained(tmp)
    names = sorted(tensor_table(os.path.join(tmp, "model.safetensors")))
    ours = sorted(k for k in t if not k.startswith(("model.visual.", "mtp.")))
    info["save_pretrained_after_wrapper_load_same_names"] = names == ours
    info["save_pretrained_after_wrapper_load_sample"] = [n for n in names if ".layers.0." in n][:8]
    shutil.rmtree(tmp)
    try:
        am = transformers.AutoModelForCausalLM.from_config(wc)
        info["automodelforcausallm_class_for_wrapper"] = type(am).__name__
        del am
    except Exception as e:  # noqa: BLE001
        info["automodelforcausallm_class_for_wrapper"] = "error: " + repr(e)[:200]
    print(f"[{name}] {json.dumps(info)}")
    return info
