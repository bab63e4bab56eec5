#!/usr/bin/env python3
"""Train a small MoE from scratch and write it as a tests/data dataset (tests/reference/README.md,
"Trained model"): a Qwen3-MoE (qwen3_moe_trained), a DeepSeek-V3 (deepseek_v3_trained) or a
Qwen3.5-MoE hybrid (qwen3_5_moe_trained), chosen by --arch.

Every other dataset has random weights: its routing is a random projection, so cache hit
rates, prefetch accuracy and the quality cost of a lower expert budget measured on it say
nothing about a real model. This one is trained, with the load-balancing loss that
transformers implements, on the text a machine with Python holds (train_corpus.py).

Run on a machine with a GPU (needs torch, transformers >= 5, tokenizers, safetensors, numpy):

    python3 tests/reference/train_moe.py --out DIR [--arch qwen3_moe] [--train-seconds 300]

--arch deepseek_v3: transformers' DeepseekV3ForCausalLM (MLA attention, first_k_dense_replace 1,
one shared expert, sigmoid router scores, group-limited top-k, routed_scaling_factor). Its
balancing is DeepSeek-V3's: no auxiliary loss on the router logits; after every step each MoE
layer's e_score_correction_bias moves by --bias-gamma towards balance (b_i += gamma *
sign(mean load - load_i)), plus the small sequence-wise balance loss (--aux-coef, alpha).
--arch qwen3_5_moe: Qwen3_5MoeForCausalLM (text): Gated DeltaNet linear attention in 3 of 4
layers, gated full attention in the 4th, 128 small experts top-8 and a shared expert behind a
sigmoid gate, with the load-balancing loss that transformers returns as aux_loss.

DIR/<arch>_trained/ receives config.json, model.safetensors (bf16), the tokenizer,
golden.safetensors, heldout.txt and train_log.json. The training is time-budgeted: after
30 timed steps the script fixes the total step count (logged as `total_steps`); `--steps N`
fixes it instead, which with the same corpus, seed and versions repeats the schedule (GPU
kernels are not bitwise deterministic, so the weights can still differ in the last bits).
"""

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import make_reference  # noqa: E402,F401  (sets deterministic CPU arithmetic for the goldens)
import train_corpus  # noqa: E402
import trained_dataset  # noqa: E402

T0 = time.time()
LOG = []


def log(*a):
    line = f"[{time.time() - T0:7.1f}s] " + " ".join(str(x) for x in a)
    print(line, flush=True)
    LOG.append(line)


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="qwen3_moe", choices=sorted(ARCH_DEFAULTS))
    ap.add_argument("--tokenizer-dir", default=os.path.join(here, "..", "data", "tokenizer"))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--train-seconds", type=float, default=300.0)
    ap.add_argument("--deadline", type=float, default=480.0,
                    help="seconds from the start by which everything must be written")
    ap.add_argument("--steps", type=int, default=0, help="fixed total steps (0: from the time budget)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--aux-coef", type=float, default=None,
                    help="router balance loss coefficient (default per arch)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--experts", type=int, default=None)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--moe-inter", type=int, default=None)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--n-group", type=int, default=8, help="deepseek_v3: expert groups")
    ap.add_argument("--topk-group", type=int, default=4, help="deepseek_v3: groups kept per token")
    ap.add_argument("--routed-scaling", type=float, default=2.5, help="deepseek_v3: routed_scaling_factor")
    ap.add_argument("--bias-gamma", type=float, default=1e-3,
                    help="deepseek_v3: bias update speed of the auxiliary-loss-free balancing")
    ap.add_argument("--ckpt-seconds", type=float, default=90.0,
                    help="save a state_dict checkpoint this often during training")
    ap.add_argument("--corpus-mb", type=float, default=64.0, help="training text, MiB in all kinds")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    for k, v in ARCH_DEFAULTS[a.arch].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    return a


# Per-architecture defaults of the options left at None, and what the dataset is called.
ARCH_DEFAULTS = {
    "qwen3_moe": {"layers": 6, "experts": 64, "moe_inter": 64, "aux_coef": 0.01},
    # DeepSeek-V3 paper: alpha = 0.0001 for the sequence-wise balance loss, gamma = 0.001
    "deepseek_v3": {"layers": 6, "experts": 128, "moe_inter": 40, "aux_coef": 1e-4},
    "qwen3_5_moe": {"layers": 8, "experts": 128, "moe_inter": 24, "aux_coef": 0.001},
}
LM_CLASS = {"qwen3_moe": "Qwen3MoeForCausalLM", "deepseek_v3": "DeepseekV3ForCausalLM",
            "qwen3_5_moe": "Qwen3_5MoeForCausalLM"}
# Tensors the published checkpoints keep in float32 (kept so when the rest is saved in bf16).
KEEP_F32 = {"qwen3_moe": (), "deepseek_v3": ("e_score_correction_bias",),
            "qwen3_5_moe": ("A_log", "linear_attn.norm.weight")}


def make_config(a, vocab):
    import transformers
    if a.arch == "deepseek_v3":
        kw = dict(vocab_size=vocab, hidden_size=a.hidden, intermediate_size=4 * a.hidden,
                  moe_intermediate_size=a.moe_inter, num_hidden_layers=a.layers,
                  num_attention_heads=a.heads, num_key_value_heads=a.heads, n_shared_experts=1,
                  n_routed_experts=a.experts, routed_scaling_factor=a.routed_scaling,
                  kv_lora_rank=64, q_lora_rank=96, qk_rope_head_dim=16, v_head_dim=32,
                  qk_nope_head_dim=32, n_group=a.n_group, topk_group=a.topk_group,
                  num_experts_per_tok=a.topk, first_k_dense_replace=1, norm_topk_prob=True,
                  hidden_act="silu", max_position_embeddings=4096, initializer_range=0.02,
                  rms_norm_eps=1e-6, use_cache=False, bos_token_id=0, eos_token_id=2,
                  tie_word_embeddings=False, attention_bias=False,
                  attention_dropout=0.0, rope_interleave=True,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        try:
            return transformers.DeepseekV3Config(scoring_func="sigmoid", topk_method="noaux_tc", **kw)
        except Exception as e:  # noqa: BLE001
            log("  DeepseekV3Config rejected scoring_func/topk_method:", repr(e)[:200])
            return transformers.DeepseekV3Config(**kw)
    if a.arch == "qwen3_5_moe":
        assert a.layers % 4 == 0, "--layers: 3 linear-attention layers then 1 full-attention layer"
        return transformers.Qwen3_5MoeTextConfig(
            vocab_size=vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
            num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, head_dim=a.head_dim,
            hidden_act="silu", max_position_embeddings=4096, initializer_range=0.02,
            rms_norm_eps=1e-6, use_cache=False, tie_word_embeddings=False, attention_bias=False,
            attention_dropout=0.0, linear_conv_kernel_dim=4, linear_key_head_dim=32,
            linear_value_head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4,
            moe_intermediate_size=a.moe_inter, shared_expert_intermediate_size=4 * a.moe_inter,
            num_experts_per_tok=a.topk, num_experts=a.experts, output_router_logits=True,
            router_aux_loss_coef=a.aux_coef,
            layer_types=(["linear_attention"] * 3 + ["full_attention"]) * (a.layers // 4),
            eos_token_id=2,
            rope_parameters={"rope_type": "default", "rope_theta": 10000000.0,
                             "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                             "mrope_interleaved": True})
    return transformers.Qwen3MoeConfig(
        vocab_size=vocab, hidden_size=a.hidden, intermediate_size=4 * a.hidden,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        head_dim=a.head_dim, hidden_act="silu", max_position_embeddings=4096,
        initializer_range=0.02, rms_norm_eps=1e-6, use_cache=False, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False, attention_dropout=0.0, decoder_sparse_step=1,
        moe_intermediate_size=a.moe_inter, num_experts_per_tok=a.topk, num_experts=a.experts,
        norm_topk_prob=True, output_router_logits=True, router_aux_loss_coef=a.aux_coef,
        mlp_only_layers=[], bos_token_id=0, eos_token_id=2, pad_token_id=0,
        sliding_window=None, use_sliding_window=False, max_window_layers=a.layers)


def set_experts_impl(model, name):
    if hasattr(model, "set_experts_implementation"):
        try:
            model.set_experts_implementation(name)
        except Exception as e:  # noqa: BLE001
            log("  set_experts_implementation failed:", repr(e)[:200])
    for c in [model.config] + [m.config for m in model.modules() if hasattr(m, "config")]:
        try:
            c._experts_implementation = name
        except Exception:  # noqa: BLE001
            pass


def tokenize_corpus(tok, corpus):
    """Training stream: every document followed by <|endoftext|> (id 0)."""
    parts, per_kind = [], {}
    for k in train_corpus.KINDS:
        docs = corpus["train"][k]
        n = 0
        for enc in tok.encode_batch(docs, add_special_tokens=False) if docs else []:
            parts.append(np.asarray(enc.ids + [0], dtype=np.int32))
            n += len(enc.ids) + 1
        per_kind[k] = n
    held = []
    for k in train_corpus.KINDS:
        texts = [t for _, t in corpus["heldout"][k]]
        for enc in tok.encode_batch(texts, add_special_tokens=False) if texts else []:
            held.append(np.asarray(enc.ids + [0], dtype=np.int32))
    train = np.concatenate(parts)
    heldout = np.concatenate(held) if held else train[:0]
    return train, heldout, per_kind


def windows(stream, seq, n):
    """The first n non-overlapping windows of seq tokens."""
    m = min(n, len(stream) // seq)
    return torch.from_numpy(stream[:m * seq].astype(np.int64).reshape(m, seq))


def evaluate(model, wins, dev, n_experts, batch=16):
    model.eval()
    batches = [wins[i:i + batch].to(dev) for i in range(0, len(wins), batch)]
    ac = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if dev.startswith("cuda") else None
    counts, loss = trained_dataset.route_counts(model, batches, n_experts, ac)
    model.train()
    return loss, trained_dataset.entropy_report(counts)


def pick_experts_impl(model, dev, V, fwd_kw):
    """grouped_mm is far faster than the per-expert loop; keep it only if it runs forward and
    backward here and agrees with the loop."""
    x = torch.randint(3, V, (2, 128), generator=torch.Generator().manual_seed(0)).to(dev)
    outs = {}
    for name in ("eager", "grouped_mm"):
        try:
            set_experts_impl(model, name)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.startswith("cuda")):
                out = model(input_ids=x, use_cache=False, **fwd_kw)
            lg = out.logits.float()
            aux = out.aux_loss if getattr(out, "aux_loss", None) is not None else 0.0
            (lg.square().mean() + aux).backward()
            model.zero_grad(set_to_none=True)
            outs[name] = lg.detach()
        except Exception as e:  # noqa: BLE001
            log(f"  experts implementation {name} failed: {repr(e)[:300]}")
    chosen = "eager"
    if "grouped_mm" in outs and "eager" in outs:
        rel = float((outs["grouped_mm"] - outs["eager"]).norm() / outs["eager"].norm())
        log(f"  grouped_mm vs eager relative difference {rel:.2e}")
        if rel < 3e-2:
            chosen = "grouped_mm"
    set_experts_impl(model, chosen)
    return chosen


class RouterTap:
    """Forward hooks on every router module: the router's input x [B*T, H] and its chosen ids
    [B*T, k] of the latest forward (kept with their autograd graph for the balance loss)."""

    def __init__(self, model):
        self.routers = [m for m in model.modules() if type(m).__name__ in trained_dataset.ROUTER_NAMES]
        self.x, self.out, self.hooks = {}, {}, []
        for i, r in enumerate(self.routers):
            self.hooks.append(r.register_forward_pre_hook(
                lambda mod, args, i=i: self.x.__setitem__(i, args[0].reshape(-1, args[0].shape[-1]))))
            self.hooks.append(r.register_forward_hook(
                lambda mod, args, o, i=i: self.out.__setitem__(i, trained_dataset.router_out(mod, o))))

    def seq_balance_loss(self, batch, k):
        """DeepSeek-V3 sequence-wise balance loss, summed over MoE layers: per sequence,
        sum_i f_i P_i with f_i = E / (k T) * (tokens choosing i), P_i = mean over tokens of
        s_i / sum_j s_j (s: sigmoid affinities, no bias), averaged over the sequences."""
        total = 0.0
        for i, r in enumerate(self.routers):
            x, ids = self.x[i], self.out[i][1]
            s = torch.sigmoid(F.linear(x.float(), r.weight.float()))          # [B*T, E]
            E = s.shape[-1]
            s = s.reshape(batch, -1, E)
            T = s.shape[1]
            p = (s / s.sum(-1, keepdim=True)).mean(1)                          # [B, E]
            onehot = torch.zeros(batch, T * k, E, device=s.device)
            onehot.scatter_(2, ids.reshape(batch, T * k, 1).long(), 1.0)
            f = onehot.sum(1) * (E / (k * T))                                  # [B, E]
            total = total + (f.detach() * p).sum(-1).mean()
        return total

    def switch_balance_loss(self, k):
        """The Switch/Mixtral load-balancing loss transformers uses (E * sum_e f_e P_e over
        all MoE layers' tokens), for a class that returns no aux_loss."""
        probs, masks = [], []
        for i in range(len(self.routers)):
            lg, ids = self.out[i]
            probs.append(torch.softmax(lg.float().reshape(-1, lg.shape[-1]), -1))
            masks.append(F.one_hot(ids.reshape(-1, k).long(), lg.shape[-1]).float().sum(1))
        p, m = torch.cat(probs), torch.cat(masks)
        return p.shape[-1] * (m.mean(0) * p.mean(0)).sum()

    @torch.no_grad()
    def update_bias(self, gamma):
        """DeepSeek-V3 auxiliary-loss-free balancing: b_i += gamma * sign(mean load - load_i)."""
        moved = []
        for i, r in enumerate(self.routers):
            ids = self.out[i][1].reshape(-1)
            b = r.e_score_correction_bias
            load = torch.bincount(ids.long(), minlength=b.numel()).float()
            b += (gamma * torch.sign(load.mean() - load)).to(b.dtype)
            moved.append(float(b.abs().max()))
        return moved


def save_ckpt(model, path, step):
    """The weights so far (float32 state_dict), written atomically: what a timeout leaves."""
    tmp = path + ".tmp"
    torch.save({"step": step, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, tmp)
    os.replace(tmp, path)


def main():
    a = parse_args()
    import safetensors
    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    info = {"args": vars(a), "versions": {
        "python": sys.version.split()[0], "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__, "numpy": np.__version__},
        "device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"}
    log("versions", info["versions"], info["device"])
    out_dir = os.path.join(os.path.abspath(a.out), f"{a.arch}_trained")
    os.makedirs(out_dir, exist_ok=True)
    try:
        run(a, info, out_dir, Tokenizer)
    except Exception:  # noqa: BLE001
        info["error"] = traceback.format_exc()
        log("ERROR", info["error"])
    finally:
        info["total_seconds"] = round(time.time() - T0, 1)
        info["log"] = LOG
        with open(os.path.join(out_dir, "train_log.json"), "w") as f:
            json.dump(info, f, indent=1, default=str)
            f.write("\n")
        log("wrote", os.path.join(out_dir, "train_log.json"))


def run(a, info, out_dir, Tokenizer):
    dev = a.device
    # make_reference turned on deterministic algorithms for the CPU goldens; several CUDA
    # kernels of the training step have no deterministic form. write_dataset turns it back on.
    torch.use_deterministic_algorithms(False)
    tok = Tokenizer.from_file(os.path.join(a.tokenizer_dir, "tokenizer.json"))
    ntok = tok.get_vocab_size(with_added_tokens=True)
    vocab = (ntok + 63) // 64 * 64
    prompt_ids = tok.encode(make_reference.PROMPT).ids
    ge = os.path.join(a.tokenizer_dir, "golden_encode.json")
    if os.path.exists(ge):
        with open(ge, encoding="utf-8") as f:
            want = [r["ids"] for r in json.load(f) if r["text"] == make_reference.PROMPT]
        assert want and want[0] == prompt_ids, "prompt tokenises differently from golden_encode.json"
    info["tokenizer"] = {"size": ntok, "model_vocab": vocab, "prompt_ids": prompt_ids}

    # --- corpus --------------------------------------------------------------------------
    scale = a.corpus_mb / 64.0
    caps = {k: int(v * scale) for k, v in train_corpus.DEFAULT_CAPS.items()}
    corpus = train_corpus.collect(a.seed, caps, log=log)
    info["corpus"] = corpus["stats"]
    train_ids, held_ids, per_kind = tokenize_corpus(tok, corpus)
    count = lambda s: len(tok.encode(s, add_special_tokens=False).ids)  # noqa: E731
    sample, parts = train_corpus.heldout_sample(corpus["heldout"], count)
    sample_ids = tok.encode(sample, add_special_tokens=False).ids
    info["corpus"].update({
        "train_tokens": int(len(train_ids)), "train_tokens_by_kind": per_kind,
        "heldout_tokens": int(len(held_ids)),
        "train_bytes_per_token": round(sum(corpus["stats"]["train_bytes"].values()) / max(len(train_ids), 1), 3),
        "train_stream_sha256": hashlib.sha256(train_ids.tobytes()).hexdigest(),
        "heldout_file_parts": parts})
    log(f"[corpus] {len(train_ids)} training tokens {per_kind}, {len(held_ids)} held-out; "
        f"held-out file {len(sample_ids)} tokens from {parts}")
    del corpus

    # --- model ---------------------------------------------------------------------------
    import transformers
    lm_cls = getattr(transformers, LM_CLASS[a.arch])
    cfg = make_config(a, vocab)
    torch.manual_seed(a.seed)
    model = lm_cls(cfg).to(dev)
    try:
        model.set_attn_implementation("sdpa")
    except Exception as e:  # noqa: BLE001
        log("  sdpa not set:", repr(e)[:200])
    n_params = sum(p.numel() for p in model.parameters())
    info["model"] = {"params": n_params, "bf16_bytes": 2 * n_params}
    # DeepSeek-V3 has no router loss in transformers: its balancing is done here (RouterTap)
    fwd_kw = {} if a.arch == "deepseek_v3" else {"output_router_logits": True}
    impl = pick_experts_impl(model, dev, ntok, fwd_kw)
    info["model"]["experts_implementation"] = impl
    log(f"[model] {n_params} parameters ({2 * n_params / 1e6:.2f} MB in bf16), experts {impl}")
    hold_wins = windows(held_ids, a.seq, 128)
    loss0, ent0 = evaluate(model, hold_wins[:16], dev, a.experts)
    info["init"] = {"heldout_loss": loss0, "usage_by_layer": ent0}
    log(f"[init] held-out loss {loss0:.4f}, entropy {[r['entropy_bits'] for r in ent0]}")

    # --- training ------------------------------------------------------------------------
    named = [(n, p) for n, p in model.named_parameters() if "e_score_correction_bias" not in n]
    for n, p in model.named_parameters():
        if "e_score_correction_bias" in n:   # moved by the balancing rule, not by the optimizer
            p.requires_grad_(False)
    decay = [p for n, p in named if p.dim() >= 2 and "norm" not in n]
    other = [p for n, p in named if not (p.dim() >= 2 and "norm" not in n)]
    tap = RouterTap(model)
    info["model"]["routers"] = len(tap.routers)
    info["model"]["config"] = {k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, list))}
    log(f"[model] {len(tap.routers)} routers ({sorted({type(r).__name__ for r in tap.routers})})")
    assert tap.routers, "no router module found"
    ckpt_path = os.path.join(out_dir, "checkpoint.pt")
    last_ckpt = time.time()
    aux_source = None
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    stream = torch.from_numpy(train_ids.astype(np.int64)).to(dev)
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    offs = torch.arange(a.seq, device=dev)
    total = a.steps if a.steps > 0 else 10 ** 9
    warm = 100
    curve, evals = [], []
    t_start = time.time()
    stop_at = min(t_start + a.train_seconds, T0 + a.deadline - 100)
    step, tokens_seen, stop_reason = 0, 0, "steps"
    model.train()
    try:
        while step < total:
            if time.time() >= stop_at:
                stop_reason = "time"
                break
            w = min(warm, max(total // 10, 1))
            if step < w:
                lr = a.lr * (step + 1) / w
            else:
                prog = min((step - w) / max(total - w, 1), 1.0)
                lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))
            for g in opt.param_groups:
                g["lr"] = lr
            starts = torch.randint(0, len(stream) - a.seq, (a.batch, 1), generator=gen, device=dev)
            x = stream[starts + offs]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.startswith("cuda")):
                out = model(input_ids=x, use_cache=False, **fwd_kw)
            ce = F.cross_entropy(out.logits[:, :-1].float().reshape(-1, vocab), x[:, 1:].reshape(-1))
            if a.arch == "deepseek_v3":
                aux, aux_source = tap.seq_balance_loss(a.batch, a.topk), "sequence-wise (DeepSeek-V3)"
            elif getattr(out, "aux_loss", None) is not None:
                aux, aux_source = out.aux_loss, "transformers aux_loss"
            else:
                aux, aux_source = tap.switch_balance_loss(a.topk), "switch loss from the router outputs"
            loss = ce + a.aux_coef * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            bias_max = tap.update_bias(a.bias_gamma) if a.arch == "deepseek_v3" else None
            step += 1
            if time.time() - last_ckpt >= a.ckpt_seconds:
                save_ckpt(model, ckpt_path, step)
                last_ckpt = time.time()
            tokens_seen += x.numel()
            if step == 10:
                t10 = time.time()
            if step == 40 and a.steps <= 0:
                per = (time.time() - t10) / 30
                total = 40 + int(max(stop_at - time.time(), 0) / per * 0.97)
                log(f"[train] {per * 1000:.1f} ms/step -> total_steps {total}")
            if step % 25 == 0 or step == 1:
                row = {"step": step, "t": round(time.time() - t_start, 1), "lr": lr, "ce": float(ce),
                       "aux": float(aux), "grad_norm": float(gn)}
                if bias_max is not None:
                    row["bias_absmax_by_layer"] = [round(b, 4) for b in bias_max]
                curve.append(row)
                if step % 100 == 0 or step == 1:
                    log(f"[train] {row}")
                if not math.isfinite(row["ce"]):
                    raise RuntimeError("loss is not finite")
            if step % 400 == 0:
                hl, he = evaluate(model, hold_wins[:16], dev, a.experts)
                evals.append({"step": step, "heldout_loss": hl,
                              "entropy_bits": [r["entropy_bits"] for r in he]})
                log(f"[eval] {evals[-1]}")
    except Exception:  # noqa: BLE001
        info["training_error"] = traceback.format_exc()
        stop_reason = "error"
        log("TRAINING ERROR (model kept as it is)", info["training_error"])
    t_train = time.time() - t_start
    info["training"] = {"steps": step, "total_steps": total if total < 10 ** 9 else None,
                        "stop_reason": stop_reason, "tokens_seen": tokens_seen,
                        "epochs": tokens_seen / max(len(train_ids), 1), "seconds": round(t_train, 1),
                        "batch": a.batch, "seq": a.seq, "lr": a.lr, "warmup": warm,
                        "schedule": "linear warmup, cosine to 0.1 x lr", "optimizer":
                        "AdamW betas (0.9, 0.95) eps 1e-8 wd 0.1 on matrices, grad clip 1.0",
                        "autocast": "bf16" if dev.startswith("cuda") else "none",
                        "balance_loss": aux_source, "balance_coef": a.aux_coef,
                        "bias_gamma": a.bias_gamma if a.arch == "deepseek_v3" else None,
                        "curve": curve, "evals": evals}
    log(f"[train] {step} steps, {tokens_seen} tokens in {t_train:.1f} s ({stop_reason})")
    if step == 0:
        raise RuntimeError("no training step ran")

    hl, he = evaluate(model, hold_wins, dev, a.experts)
    info["final"] = {"heldout_windows": len(hold_wins), "heldout_tokens": int(hold_wins.numel()),
                     "heldout_loss_bf16": hl, "heldout_perplexity_bf16": math.exp(hl),
                     "usage_by_layer": he}
    log(f"[final] held-out loss {hl:.4f} (ppl {math.exp(hl):.2f}) over {hold_wins.numel()} tokens; "
        f"entropy {[r['entropy_bits'] for r in he]}")

    # --- dataset ---------------------------------------------------------------------------
    for h in tap.hooks:
        h.remove()
    save_ckpt(model, ckpt_path, step)
    model.eval()
    if a.arch == "qwen3_moe":
        info["dataset"] = trained_dataset.write_dataset(model, out_dir, a.tokenizer_dir, sample,
                                                        sample_ids, prompt_ids, log)
    else:
        info["dataset"] = trained_dataset.write_dataset_arch(
            model, out_dir, a.tokenizer_dir, sample, sample_ids, prompt_ids, log, lm_cls,
            "deepseek" if a.arch == "deepseek_v3" else "softmax", KEEP_F32[a.arch], ntok)
    os.remove(ckpt_path)   # the dataset is complete: the checkpoint was only for a timeout


if __name__ == "__main__":
    main()
