"""Share of generated JSON objects that parse, per expert-budget setting (bench/RESULTS.md).

Method: each prompt is the opening of a real JSON object the trained model never saw (the
first PROMPT_LINES lines of each JSON file under this repository's tests/data that starts
with a line '{', tokenizer.json aside: '{' and its first members). The model continues it greedily (temperature 0) for up to MAX_TOKENS
tokens; the prompt plus the continuation passes if json.JSONDecoder.raw_decode reads one
complete object from its start (text after the object is ignored). Every setting sees the
same prompts, so the share compares settings, not prompts.

usage: python3 bench/json_prompts.py MOESTREAM MODEL [--setting LABEL "ARGS"]...
  e.g. bench/json_prompts.py build/bin/moestream tests/data/qwen3_moe_trained \
         --setting k=8 "" --setting k=4 "--experts-per-token 4"
"""
import glob
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT_LINES = 3
MAX_TOKENS = 200


def prompts():
    out = []
    paths = glob.glob(os.path.join(ROOT, "tests/data/**/*.json"), recursive=True)
    for path in sorted(p for p in paths if os.path.basename(p) != "tokenizer.json"):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        prompt = "\n".join(lines[:PROMPT_LINES]) + "\n"
        if len(lines) > PROMPT_LINES and lines[0].strip() == "{" and prompt not in out:  # each opening once
            out.append(prompt)
    return out


def parses(text):
    try:
        obj, _ = json.JSONDecoder().raw_decode(text)
        return isinstance(obj, dict)
    except json.JSONDecodeError:
        return False


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    exe, model = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    settings = []
    while rest:
        if rest[0] != "--setting" or len(rest) < 3:
            sys.exit("expected --setting LABEL \"ARGS\"")
        settings.append((rest[1], shlex.split(rest[2])))
        rest = rest[3:]
    if not settings:
        settings = [("model", [])]
    ps = prompts()
    print(f"{len(ps)} prompts, greedy, up to {MAX_TOKENS} tokens each")
    print("| setting | parsed | share |\n|---|---:|---:|")
    for label, extra in settings:
        ok = 0
        for p in ps:
            cmd = [exe, "run", "-m", model, "-p", p, "-n", str(MAX_TOKENS), "--temp", "0", "--backend", "cpu",
                   "-t", "2"] + extra
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
            ok += parses(p + r.stdout)
        print(f"| {label} | {ok}/{len(ps)} | {100.0 * ok / len(ps):.0f}% |", flush=True)


if __name__ == "__main__":
    main()
