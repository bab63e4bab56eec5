#!/usr/bin/env python3
"""RESULTS.md rows from the raw output of the synth routing scripts (blocks of
'== PROTOCOL MODEL VARIANT' followed by `bench_routing replay`): per sparse layer usage entropy and
next-token reuse with their mean / max error against the block named 'trained' of the same protocol
and model, the reuse-distance histogram (mean over layers, first uses left out) with its summed
absolute difference from the trained one, the mean adjacent-layer mutual information, and the
shared-cache hit rates. Usage: synth_table.py RAW.txt"""
import re
import sys

BINS = ["d=1", "2", "3-4", "5-8", "9-16", "17-64", ">64"]


def parse(path):
    blocks, cur = [], None
    section = None
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("== "):
            cur = {"key": line[3:].split(), "layers": [], "mi": [], "hits": {}}
            blocks.append(cur)
            continue
        if cur is None or not line.startswith("|"):
            if cur is not None and line:
                section = line
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not re.match(r"^[0-9]", cells[0]):
            continue
        if section.startswith("shared cache"):
            cur["hits"][int(cells[0])] = (cells[2], cells[3], cells[4])
        elif section.startswith("per layer"):
            cur["layers"].append({"entropy": float(cells[1]), "reuse": float(cells[4].rstrip("%")),
                                  "hist": [float(c) for c in cells[6:13]]})
        elif section.startswith("adjacent"):
            cur["mi"].append(float(cells[2]))
    return blocks


def row(b, ref):
    ent = [l["entropy"] for l in b["layers"]]
    reuse = [l["reuse"] for l in b["layers"]]
    hist = [sum(l["hist"][i] for l in b["layers"]) / len(b["layers"]) for i in range(len(BINS))]
    out = [b["key"][1].replace("_trained", ""), b["key"][0], b["key"][2], " ".join(f"{e:.2f}" for e in ent)]
    if ref is b:
        out += ["-", " ".join(f"{r:.0f}" for r in reuse), "-"]
    else:
        re_ = [abs(a - c["entropy"]) for a, c in zip(ent, ref["layers"])]
        ru = [abs(a - c["reuse"]) for a, c in zip(reuse, ref["layers"])]
        out += [f"{sum(re_) / len(re_):.2f} / {max(re_):.2f}", " ".join(f"{r:.0f}" for r in reuse),
                f"{sum(ru) / len(ru):.1f} / {max(ru):.1f}"]
    out += [f"{h:.1f}" for h in hist]
    if ref is b:
        out.append("-")
    else:
        rh = [sum(l["hist"][i] for l in ref["layers"]) / len(ref["layers"]) for i in range(len(BINS))]
        out.append(f"{sum(abs(a - c) for a, c in zip(hist, rh)):.1f}")
    out.append(f"{sum(b['mi']) / len(b['mi']):.2f}" if b["mi"] else "-")
    for p in range(3):
        out.append(" / ".join(b["hits"][s][p] for s in sorted(b["hits"])))
    return "| " + " | ".join(out) + " |"


def main():
    blocks = parse(sys.argv[1])
    refs = {tuple(b["key"][:2]): b for b in blocks if b["key"][2] == "trained"}
    print("| model | text | routing | entropy per layer | err mean / max | next-token reuse per layer | err mean / max | "
          + " | ".join(BINS) + " | hist L1 | adjacent MI | lru | lrfu-admit | belady |")
    print("|---|---|---|---|---:|---|---:|" + "---:|" * len(BINS) + "---:|---:|---|---|---|")
    for b in blocks:
        print(row(b, refs[tuple(b["key"][:2])]))


if __name__ == "__main__":
    main()
