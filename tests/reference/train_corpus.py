"""Training text for train_moe.py: what a machine with Python on it already holds.

The GPU machines have no network, so the corpus is the text found on them: Python
sources (the standard library and site-packages: code, docstrings, comments), prose
(.md / .rst / .txt files, package METADATA and licences, /usr/share/doc) and JSON files.
Every file goes to the training or the held-out split by a hash of its path, so the split
does not depend on which other files exist. The file list is shuffled with a fixed seed
before the per-kind byte caps are applied, so no package dominates by its name's place in
the alphabet. The exact set depends on the machine; the log records counts and a digest.
"""

import glob
import hashlib
import os
import random
import site
import sysconfig
import time

KINDS = ("code", "prose", "json")
# Bytes per kind (training split). Code is the most plentiful; prose and JSON are capped
# lower so that they are not drowned out but also not repeated to fill a quota.
DEFAULT_CAPS = {"code": 40 << 20, "prose": 16 << 20, "json": 8 << 20}
MAX_FILE_BYTES = 256 << 10
HELDOUT_PER_MILLE = 25  # 2.5 % of the files


def _roots():
    roots = set(glob.glob("/usr/lib/python3*")) | set(glob.glob("/usr/local/lib/python3*"))
    for p in list(site.getsitepackages()) + [site.getusersitepackages(),
                                             sysconfig.get_paths().get("purelib", ""),
                                             sysconfig.get_paths().get("stdlib", "")]:
        if p and os.path.isdir(p):
            roots.add(p)
    for p in ("/usr/share/doc", "/usr/share/common-licenses"):
        if os.path.isdir(p):
            roots.add(p)
    # Drop roots nested inside other roots (site-packages under /usr/lib/python3.x).
    roots = sorted(os.path.realpath(r) for r in roots)
    out = []
    for r in roots:
        if not any(r != o and r.startswith(o + os.sep) for o in out):
            out.append(r)
    return out


def kind_of(path):
    base = os.path.basename(path)
    ext = os.path.splitext(base)[1].lower()
    if ext == ".py":
        return "code"
    if ext == ".json":
        return "json"
    if ext in (".md", ".rst", ".txt") or base in ("METADATA", "copyright", "README") \
            or base.startswith("LICENSE") or "/common-licenses/" in path:
        return "prose"
    return None


def is_heldout(path):
    h = int(hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:8], 16)
    return h % 1000 < HELDOUT_PER_MILLE


def read_text(path):
    """The file as text, or None when it is not plain UTF-8 text worth training on."""
    try:
        if os.path.islink(path) or os.path.getsize(path) > MAX_FILE_BYTES or os.path.getsize(path) < 64:
            return None
        with open(path, "rb") as f:
            raw = f.read()
        if b"\0" in raw:
            return None
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.count("\n") + 1
    if len(text) / lines > 300:  # minified or generated data, not text
        return None
    return text


def collect(seed, caps=None, time_limit=90.0, log=print):
    """Returns {"train": {kind: [texts]}, "heldout": {kind: [(path, text)]}, "stats": ...}."""
    caps = dict(caps or DEFAULT_CAPS)
    t0 = time.time()
    paths = []
    for root in _roots():
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(d, f)
                if kind_of(p):
                    paths.append(p)
        if time.time() - t0 > time_limit / 3:
            log(f"[corpus] walk stopped early at {root}: time")
            break
    paths = sorted(set(paths))
    random.Random(seed).shuffle(paths)
    train = {k: [] for k in KINDS}
    held = {k: [] for k in KINDS}
    used = {k: 0 for k in KINDS}
    held_bytes = {k: 0 for k in KINDS}
    seen = set()
    n_read = 0
    for p in paths:
        if time.time() - t0 > time_limit:
            log("[corpus] reading stopped early: time")
            break
        k = kind_of(p)
        ho = is_heldout(p)
        if not ho and used[k] >= caps[k]:
            continue
        if ho and held_bytes[k] >= caps[k] // 20:
            continue
        text = read_text(p)
        n_read += 1
        if text is None:
            continue
        digest = hashlib.sha1(text.encode("utf-8")).digest()
        if digest in seen:  # the same file installed twice (two Python versions)
            continue
        seen.add(digest)
        if ho:
            held[k].append((p, text))
            held_bytes[k] += len(text.encode("utf-8"))
        else:
            train[k].append(text)
            used[k] += len(text.encode("utf-8"))
    stats = {"roots": _roots(), "candidate_files": len(paths), "files_read": n_read,
             "train_files": {k: len(v) for k, v in train.items()}, "train_bytes": used,
             "heldout_files": {k: len(v) for k, v in held.items()}, "heldout_bytes": held_bytes,
             "caps": caps, "seconds": round(time.time() - t0, 1)}
    log(f"[corpus] {stats}")
    return {"train": train, "heldout": held, "stats": stats}


def heldout_sample(held, count_tokens, max_tokens=1000, per_kind_chars=1500):
    """A small held-out text with one piece of each kind (code, prose, JSON), cut at line
    ends, short enough to run in one pass inside the trained context (<= max_tokens)."""
    budget = per_kind_chars
    while budget >= 200:
        parts = []
        for k in KINDS:
            for path, text in held[k]:
                if len(text) < budget:
                    continue
                cut = text[:budget]
                cut = cut[:cut.rfind("\n") + 1] if "\n" in cut else cut
                if len(cut) >= budget // 2:
                    parts.append((k, path, cut))
                    break
        sample = "".join(c for _, _, c in parts)
        if count_tokens(sample) <= max_tokens:
            return sample, [(k, p, len(c)) for k, p, c in parts]
        budget = int(budget * 0.9)
    raise RuntimeError("no held-out sample fits")
