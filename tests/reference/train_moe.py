#!/usr/bin/env python3
"""Train a small Qwen3-MoE from scratch and write it as the tests/data/qwen3_moe_trained
dataset (tests/reference/README.md, "Trained model").

Every other dataset has random weights: its routing is a random projection, so cache hit
rates, prefetch accuracy and the quality cost of a lower expert budget measured on it say
nothing about a real model. This one is trained, with the load-balancing loss that
transformers implements, on the text a machine with Python holds (train_corpus.py).

Run on a machine with a GPU (needs torch, transformers >= 5, tokenizers, safetensors, numpy):

    python3 tests/reference/train_moe.py --out DIR [--train-seconds 300]

DIR/qwen3_moe_trained/ receives config.json, model.safetensors (bf16), the tokenizer,
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
    ap.add_argument("--tokenizer-dir", default=os.path.join(here, "..", "data", "tokenizer"))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--train-seconds", type=float, default=300.0)
    ap.add_argument("--deadline", type=float, default=480.0,
                    help="seconds from the start by which everything must be written")
    ap.add_argument("--steps", type=int, default=0, help="fixed total steps (0: from the time budget)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--aux-coef", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--moe-inter", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--corpus-mb", type=float, default=64.0, help="training text, MiB in all kinds")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap.parse_args()


def make_config(a, vocab):
    from transformers import Qwen3MoeConfig
    return Qwen3MoeConfig(
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


def pick_experts_impl(model, dev, V):
    """grouped_mm is far faster than the per-expert loop; keep it only if it runs forward and
    backward here and agrees with the loop."""
    x = torch.randint(3, V, (2, 128), generator=torch.Generator().manual_seed(0)).to(dev)
    outs = {}
    for name in ("eager", "grouped_mm"):
        try:
            set_experts_impl(model, name)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.startswith("cuda")):
                out = model(input_ids=x, output_router_logits=True, use_cache=False)
            lg = out.logits.float()
            (lg.square().mean() + out.aux_loss).backward()
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
    out_dir = os.path.join(os.path.abspath(a.out), "qwen3_moe_trained")
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
    from transformers import Qwen3MoeForCausalLM
    cfg = make_config(a, vocab)
    torch.manual_seed(a.seed)
    model = Qwen3MoeForCausalLM(cfg).to(dev)
    try:
        model.set_attn_implementation("sdpa")
    except Exception as e:  # noqa: BLE001
        log("  sdpa not set:", repr(e)[:200])
    n_params = sum(p.numel() for p in model.parameters())
    info["model"] = {"params": n_params, "bf16_bytes": 2 * n_params}
    impl = pick_experts_impl(model, dev, ntok)
    info["model"]["experts_implementation"] = impl
    log(f"[model] {n_params} parameters ({2 * n_params / 1e6:.2f} MB in bf16), experts {impl}")
    hold_wins = windows(held_ids, a.seq, 128)
    loss0, ent0 = evaluate(model, hold_wins[:16], dev, a.experts)
    info["init"] = {"heldout_loss": loss0, "usage_by_layer": ent0}
    log(f"[init] held-out loss {loss0:.4f}, entropy {[r['entropy_bits'] for r in ent0]}")

    # --- training ------------------------------------------------------------------------
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "norm" not in n)]
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
                out = model(input_ids=x, output_router_logits=True, use_cache=False)
            ce = F.cross_entropy(out.logits[:, :-1].float().reshape(-1, vocab), x[:, 1:].reshape(-1))
            aux = out.aux_loss
            if aux is None:
                raise RuntimeError("transformers returned no aux_loss with output_router_logits=True")
            loss = ce + a.aux_coef * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
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
    model.eval()
    info["dataset"] = trained_dataset.write_dataset(model, out_dir, a.tokenizer_dir, sample,
                                                    sample_ids, prompt_ids, log)


if __name__ == "__main__":
    main()
