#!/usr/bin/env python3
"""Generate the reference datasets for the architectures beyond Qwen3-MoE.

Run (needs torch, transformers >= 5, tokenizers, safetensors, numpy):

    python3 tests/reference/make_reference_archs.py --out DIR [--only GROUP,...]

(groups: qwen3_5 qwen3_next deepseek kimi kimi_k25 mixtral gpt_oss; they are independent, so they
can also run in parallel into separate directories and be combined with
`make_reference_archs.py --merge DIR SRC_DIR...`)

It reads the committed tokenizer (tests/data/tokenizer, made by make_reference.py) and
writes into DIR, one folder per dataset:

    qwen3_5_moe_tiny/      Qwen3_5MoeForCausalLM (model_type qwen3_5_moe_text)
    qwen3_5_moe_wrapped/   same weights in the multimodal-wrapper layout (model_type qwen3_5_moe)
    qwen3_next_tiny/       Qwen3NextForCausalLM
    deepseek_v3_tiny/      DeepseekV3ForCausalLM, bf16
    deepseek_v3_fp8/       same weights stored as DeepSeek-V3 block FP8
    kimi_k2_tiny/          DeepseekV3ForCausalLM with Kimi K2 settings, Kimi's legacy config.json
    kimi_k25_int4/         Kimi K2.5's wrapper layout, compressed-tensors INT4 experts (arch_kimi_k25.py)
    mixtral_tiny/          MixtralForCausalLM
    gpt_oss_tiny/          GptOssForCausalLM, bf16
    gpt_oss_mxfp4/         same weights with the experts stored as MXFP4
    reference_info_archs.json

All goldens are float32 CPU arithmetic on the stored (rounded) weights, eager attention,
with RoPE inv_freq computed in float32.  See tests/reference/README.md.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from make_reference import PROMPT, finish_output, print_file_sizes  # noqa: E402  (also sets deterministic torch)

GROUPS = ["qwen3_5", "qwen3_next", "deepseek", "kimi", "kimi_k25", "mixtral", "gpt_oss"]
SEEDS = {"qwen3_5": 3000, "qwen3_next": 4000, "deepseek": 5000, "kimi": 6000, "kimi_k25": 6500,
         "mixtral": 7000, "gpt_oss": 8000}


def merge(dst, srcs):
    """Move the dataset folders of several --out directories (e.g. groups run in parallel)
    into dst and merge their reference_info_archs.json files."""
    os.makedirs(dst, exist_ok=True)
    info = None
    for s in srcs:
        if not os.path.exists(os.path.join(s, "reference_info_archs.json")):
            print(f"MERGE: {s} has no reference_info_archs.json (run did not finish); skipped")
            continue
        with open(os.path.join(s, "reference_info_archs.json"), encoding="utf-8") as f:
            part = json.load(f)
        if info is None:
            info = part
        else:
            for g in part.get("groups_run", []):      # a newer run of a group clears its old error
                info["errors"].pop(g, None)
            info["datasets"].update(part["datasets"])
            info["errors"].update(part["errors"])
            info["groups_run"] = sorted(set(info.get("groups_run", [])) | set(part.get("groups_run", [])))
        for name in sorted(os.listdir(s)):
            if os.path.isdir(os.path.join(s, name)):
                if os.path.exists(os.path.join(dst, name)):
                    shutil.rmtree(os.path.join(dst, name))
                shutil.move(os.path.join(s, name), os.path.join(dst, name))
    info["command"] = "python3 tests/reference/make_reference_archs.py --out DIR"
    with open(os.path.join(dst, "reference_info_archs.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False, default=str)
        f.write("\n")
    print_file_sizes(dst, f"; errors in: {sorted(info['errors'])}")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--merge":
        return merge(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                        "..", "data", "tokenizer"))
    ap.add_argument("--only", default=",".join(GROUPS))
    ap.add_argument("--seeds", type=int, default=300, help="seeds tried per dataset")
    args = ap.parse_args()
    import safetensors
    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    import arch_classic
    import arch_deepseek
    import arch_kimi_k25
    import arch_qwen_hybrid

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tok_dir = os.path.abspath(args.tokenizer)
    hf = AutoTokenizer.from_pretrained(tok_dir)
    prompt_ids = hf(PROMPT)["input_ids"]
    with open(os.path.join(tok_dir, "golden_encode.json"), encoding="utf-8") as f:
        gold = json.load(f)
    assert gold[-1]["text"] == PROMPT and gold[-1]["ids"] == prompt_ids, "tokenizer/prompt mismatch"
    ntok = len(hf)
    info = {"versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__,
                         "safetensors": safetensors.__version__, "numpy": np.__version__},
            "command": "python3 tests/reference/make_reference_archs.py --out DIR",
            "prompt_ids": prompt_ids, "tokenizer_size": ntok, "datasets": {}, "errors": {},
            "groups_run": sorted(args.only.split(","))}
    print("versions:", info["versions"])
    work = tempfile.mkdtemp()
    n = args.seeds
    jobs = {
        "qwen3_5": lambda: qwen35(),
        "qwen3_next": lambda: {"qwen3_next_tiny": arch_qwen_hybrid.build(
            "qwen3_next", "qwen3_next_tiny", out, work, tok_dir, prompt_ids, ntok,
            SEEDS["qwen3_next"], n)[0]},
        "deepseek": lambda: arch_deepseek.build_deepseek(out, work, tok_dir, prompt_ids, ntok,
                                                         SEEDS["deepseek"], n),
        "kimi": lambda: arch_deepseek.build_kimi(out, work, tok_dir, prompt_ids, ntok,
                                                 SEEDS["kimi"], n),
        "kimi_k25": lambda: arch_kimi_k25.build_kimi_k25(out, work, tok_dir, prompt_ids, ntok,
                                                         SEEDS["kimi_k25"], n),
        "mixtral": lambda: arch_classic.build_mixtral(out, work, tok_dir, prompt_ids, ntok,
                                                      SEEDS["mixtral"], n),
        "gpt_oss": lambda: arch_classic.build_gpt_oss(out, work, tok_dir, prompt_ids, ntok,
                                                      SEEDS["gpt_oss"], n),
    }

    def qwen35():
        i1, canon = arch_qwen_hybrid.build("qwen3_5", "qwen3_5_moe_tiny", out, work, tok_dir,
                                           prompt_ids, ntok, SEEDS["qwen3_5"], n)
        res = {"qwen3_5_moe_tiny": i1}
        try:
            res["qwen3_5_moe_wrapped"] = arch_qwen_hybrid.build_wrapped(out, tok_dir, prompt_ids, canon)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            info["errors"]["qwen3_5_moe_wrapped"] = traceback.format_exc()[-3000:]
        return res

    for g in args.only.split(","):
        print(f"\n======== {g} ========", flush=True)
        try:
            info["datasets"].update(jobs[g]())
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            info["errors"][g] = traceback.format_exc()[-3000:]
    for name in info["datasets"]:
        d = os.path.join(out, name)
        if os.path.isdir(d):
            from ref_common import tensor_table
            info["datasets"][name]["files"] = {f: os.path.getsize(os.path.join(d, f))
                                              for f in sorted(os.listdir(d))}
            # names, dtypes and shapes (per-expert tensors of expert 0 only)
            info["datasets"][name]["tensors"] = {
                k: v for k, v in tensor_table(os.path.join(d, "model.safetensors")).items()
                if not re.search(r"\.experts\.([1-9]\d*)\.", k)}
    finish_output(out, work, info, "reference_info_archs.json", json_default=str)
    for name, v in info["datasets"].items():
        q = v.get("quality", {})
        print(f"{name}: seed {v.get('seed')} max|logit| {q.get('max_abs_logit', 0):.2f} "
              f"rel topk-reduced {q.get('rel_change_topk_reduced', 0):.3f} greedy {v.get('greedy_ids')}")
    if info["errors"]:
        print("ERRORS in:", sorted(info["errors"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
