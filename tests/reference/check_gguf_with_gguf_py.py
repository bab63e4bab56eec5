#!/usr/bin/env python3
"""Reads a GGUF file written by tests/support/gguf_model_writer with llama.cpp's own
Python package (gguf-py: GGUFReader, the qwen3moe tensor-name map and dequantize), as
an independent check of the writer that moestream's GGUF tests rely on:

  - every tensor's name is the one gguf-py's TensorNameMap gives the Hugging Face name,
    and is a tensor of the architecture (qwen3moe, or llama for Mixtral; but a dense
    layer's ffn_{gate,up,down}, which llama.cpp's qwen3moe does not have: moestream's test
    model has one); llama's attn_q / attn_k rows permuted as convert_hf_to_gguf.py does;
  - the hyperparameter keys gguf-py's Keys name are present with the config's values;
  - each tensor dequantized by gguf-py equals the checkpoint's weights: exactly for
    F32 / BF16, rounded to f16 for F16, within half a Q8_0 step for Q8_0;
  - the vocabulary and merges are the tokenizer.json's.

usage: check_gguf_with_gguf_py.py FILE.gguf CHECKPOINT_DIR GGUF_PY_DIR   (exit 0 = agrees)
"""
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "BF16":
            v = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F32":
            v = np.frombuffer(raw, dtype=np.float32)
        elif info["dtype"] == "F16":
            v = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        else:
            raise SystemExit(f"{name}: dtype {info['dtype']} not handled")
        out[name] = v.reshape(info["shape"])
    return out


def main():
    gguf_path, ckpt_dir, gguf_py = sys.argv[1:4]
    sys.path.insert(0, gguf_py)
    import gguf
    from gguf.quants import dequantize

    config = json.load(open(f"{ckpt_dir}/config.json"))
    weights = load_safetensors(f"{ckpt_dir}/model.safetensors")
    reader = gguf.GGUFReader(gguf_path)
    problems = []

    def field(key):
        f = reader.get_field(key)
        if f is None:
            problems.append(f"missing key {key}")
            return None
        return f.contents()

    arch = field(gguf.Keys.General.ARCHITECTURE)
    model_arch = {"qwen3moe": gguf.MODEL_ARCH.QWEN3MOE, "llama": gguf.MODEL_ARCH.LLAMA}.get(arch)
    if model_arch is None:
        raise SystemExit(f"general.architecture is {arch!r}, not qwen3moe or llama")
    n_layers = config["num_hidden_layers"]
    K = gguf.Keys.LLM
    A = gguf.Keys.Attention
    expect = {
        K.BLOCK_COUNT: n_layers,
        K.CONTEXT_LENGTH: config["max_position_embeddings"],
        K.EMBEDDING_LENGTH: config["hidden_size"],
        K.FEED_FORWARD_LENGTH: config["intermediate_size"],
        K.EXPERT_COUNT: config.get("num_experts", config.get("num_local_experts")),
        K.EXPERT_USED_COUNT: config["num_experts_per_tok"],
        A.HEAD_COUNT: config["num_attention_heads"],
        A.HEAD_COUNT_KV: config["num_key_value_heads"],
        A.KEY_LENGTH: config["head_dim"],
        gguf.Keys.Rope.FREQ_BASE: config.get("rope_parameters", {}).get("rope_theta", config.get("rope_theta")),
        A.LAYERNORM_RMS_EPS: config["rms_norm_eps"],
    }
    if "moe_intermediate_size" in config:
        expect[K.EXPERT_FEED_FORWARD_LENGTH] = config["moe_intermediate_size"]
    for key, want in expect.items():
        got = field(key.format(arch=arch))
        if got is not None and not np.isclose(float(got), float(want), rtol=1e-6):
            problems.append(f"{key}: {got} != {want}")

    name_map = gguf.get_tensor_name_map(model_arch, n_layers)
    dense_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN3, n_layers)
    allowed = set()
    for t in gguf.MODEL_TENSORS[model_arch]:
        for bid in range(n_layers):
            allowed.add(gguf.TENSOR_NAMES[t].format(bid=bid) + ".weight")
    tensors = {t.name: t for t in reader.tensors}
    dense_names = {gguf.TENSOR_NAMES[t] for t in (gguf.MODEL_TENSOR.FFN_GATE, gguf.MODEL_TENSOR.FFN_UP,
                                                   gguf.MODEL_TENSOR.FFN_DOWN)}
    for name in tensors:
        if name not in allowed and not any(name == d.format(bid=b) + ".weight" for d in dense_names
                                           for b in range(n_layers)):
            problems.append(f"{name} is not a {arch} tensor name")

    q8_worst = 0.0
    n_checked = 0
    stacked = {}
    for hf_name, w in weights.items():
        expert = None
        if ".mlp.experts." in hf_name:
            # convert_hf_to_gguf.py stacks a layer's experts first, then maps the stacked
            # name (model.layers.N.mlp.experts.gate_proj.weight).
            head, tail = hf_name.split(".mlp.experts.")
            expert, part = tail.split(".", 1)
            hf_name = f"{head}.mlp.experts.{part}"
        elif ".block_sparse_moe.experts." in hf_name:
            # Mixtral's stacked name is layers.N.feed_forward.experts.w1.weight.
            head, tail = hf_name.split(".block_sparse_moe.experts.")
            expert, part = tail.split(".", 1)
            hf_name = f"layers.{head.split('.')[-1]}.feed_forward.experts.{part}"
        gname = name_map.get_name(hf_name, try_suffixes=(".weight",))
        if gname is None:
            # A dense layer: llama.cpp's qwen3moe has none, so its names come from qwen3's.
            gname = dense_map.get_name(hf_name, try_suffixes=(".weight",))
        if gname is None:
            problems.append(f"gguf-py maps no name for {hf_name}")
            continue
        if expert is not None:
            stacked.setdefault(gname, {})[int(expert)] = w
            continue
        if gname not in tensors:
            problems.append(f"{gname} (from {hf_name}) is missing")
            continue
        t = tensors[gname]
        if arch == "llama" and gname.split(".")[-2] in ("attn_q", "attn_k"):
            # convert_hf_to_gguf.py's LlamaModel.permute, for ggml's interleaved RoPE.
            heads = config["num_attention_heads"] if gname.split(".")[-2] == "attn_q" else config["num_key_value_heads"]
            w = w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        got = dequantize(t.data, t.tensor_type).reshape(w.shape)
        q8_worst = max(q8_worst, compare(gname, t, got, w, problems))
        n_checked += 1
    for gname, experts in stacked.items():
        w = np.stack([experts[e] for e in sorted(experts)])
        t = tensors.get(gname)
        if t is None:
            problems.append(f"{gname} is missing")
            continue
        got = dequantize(t.data, t.tensor_type).reshape(w.shape)
        q8_worst = max(q8_worst, compare(gname, t, got, w, problems))
        n_checked += 1

    tok = json.load(open(f"{ckpt_dir}/tokenizer.json"))
    tokens = field("tokenizer.ggml.tokens")
    for text, i in tok["model"]["vocab"].items():
        if tokens[i] != text:
            problems.append(f"token {i}: {tokens[i]!r} != {text!r}")
            break
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    if field("tokenizer.ggml.merges") != merges:
        problems.append("tokenizer.ggml.merges differ from tokenizer.json's")

    types = sorted({t.tensor_type.name for t in reader.tensors})
    print(f"{gguf_path}: gguf-py read {len(reader.tensors)} tensors ({', '.join(types)}), "
          f"{n_checked} compared with the checkpoint, worst Q8_0 error {q8_worst:.3f} of a step, "
          f"{len(tokens)} tokens")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


def compare(name, t, got, want, problems):
    """Exact for F32 / BF16 (the checkpoint is bf16), the f16 rounding for F16, within half a
    step (plus the f16 rounding of the scale) for Q8_0. Returns the worst Q8_0 error in steps."""
    import gguf
    if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
        # The bytes gguf-py's own Q8_0 quantizer makes of the same weights.
        from gguf.quants import quantize
        ref = quantize(want.astype(np.float32).reshape(-1, want.shape[-1]), t.tensor_type)
        if ref.tobytes() != t.data.tobytes():
            problems.append(f"{name}: Q8_0 bytes differ from gguf-py's quantization")
        blocks = want.reshape(-1, 32)
        step = np.abs(blocks).max(axis=1, keepdims=True) / 127
        err = np.abs(got.reshape(-1, 32) - blocks) / np.where(step > 0, step, 1)
        worst = float(err.max())
        if worst > 0.5 + 127 * 2.0 ** -11:  # half a step, and the f16 rounding of the scale
            problems.append(f"{name}: Q8_0 off by {worst:.3f} steps")
        return worst
    if t.tensor_type == gguf.GGMLQuantizationType.F16:
        want = want.astype(np.float16)  # round to nearest even, as the writer does
    if not np.array_equal(got.astype(np.float32), want.astype(np.float32)):
        problems.append(f"{name}: {t.tensor_type.name} values differ (max {np.abs(got - want).max()})")
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
