"""Held-out text for the trained models' routing, cache and quality numbers (bench/RESULTS.md).

The trained models (tests/reference/train_moe.py) learnt from the Python sources, prose and
JSON found on the training machine; this repository's own files were never on it, so they
are text of the same kinds that the models have certainly not seen. Taken file by file (the
first 6 kB of each, cut at a line end), rotating code -> prose -> JSON until each kind's byte share is filled (about the
training mix: 65 % code, 25 % prose, 10 % JSON), in sorted path order so the result is the
same on every checkout of the same commit.

usage: python3 bench/make_heldout_text.py OUT [TOTAL_BYTES]
"""
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = {
    "code": ["tests/reference/*.py", "scripts/*.py", "examples/python/*.py", "bench/*.py"],
    "prose": ["README.md", "docs/*.md", "tests/reference/README.md"],
    "json": ["tests/data/*/config.json", "tests/data/*/generation_config.json", "tests/data/*/tokenizer_config.json"],
}
SHARE = {"code": 0.65, "prose": 0.25, "json": 0.10}
PER_FILE = 6000


def files(kind):
    out = []
    for pattern in SOURCES[kind]:
        out += sorted(glob.glob(os.path.join(ROOT, pattern)))
    return [p for p in out if os.path.basename(p) != "make_heldout_text.py"]


def main():
    out_path = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 64000
    queues = {k: files(k) for k in SHARE}
    used = {k: 0 for k in SHARE}
    parts = []
    while any(queues.values()):
        for k in SHARE:
            if not queues[k] or used[k] >= SHARE[k] * total:
                queues[k] = [] if used[k] >= SHARE[k] * total else queues[k]
                continue
            with open(queues[k].pop(0), encoding="utf-8") as f:
                text = f.read()
            # At most PER_FILE bytes of a file, so that no one file makes up a kind.
            text = text[: min(PER_FILE, int(SHARE[k] * total) - used[k] + 500)]
            text = text[: text.rfind("\n") + 1] or text
            parts.append(text)
            used[k] += len(text.encode("utf-8"))
    with open(out_path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(parts))
    print(f"{out_path}: {sum(used.values())} bytes {used}")


if __name__ == "__main__":
    main()
