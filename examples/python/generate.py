#!/usr/bin/env python3
"""Stream a model's answer to a prompt, then report speed and expert traffic.

    python3 examples/python/generate.py -m tests/data/qwen3_moe_tiny -p "Hello" -n 32

The package is used installed (``pip install --no-build-isolation ./examples/python``)
or, from the checkout, straight from this folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("moestream") is None:  # run from the checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import moestream  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True, help="checkpoint directory or packed .mst file")
    parser.add_argument("-p", "--prompt", default="The quickest way to read a model from disk is")
    parser.add_argument("-n", "--max-tokens", type=int, default=64)
    parser.add_argument("--temp", type=float, default=0.8, help="temperature; 0 = greedy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--cache-mb", type=int, default=1024, help="expert cache budget in MiB")
    parser.add_argument("--backend", default="auto", help="auto | cpu | vulkan")
    parser.add_argument("--experts-per-token", type=int, default=0, help="0 = the model's top-k")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with moestream.Model(args.model, backend=args.backend, expert_cache_bytes=args.cache_mb << 20,
                             experts_per_token=args.experts_per_token) as model:
            info = model.info()
            print(f"{info['architecture']} on {info['backend']}, storage {info['storage']}, "
                  f"{info['experts_per_token']} of {info['n_experts']} experts per token", file=sys.stderr)
            with model.session(seed=args.seed) as session:
                generation = session.generate(args.prompt, max_tokens=args.max_tokens, temperature=args.temp,
                                              stop=args.stop)
                print(args.prompt, end="", flush=True)
                for piece in generation:
                    print(piece, end="", flush=True)
                print()
                stats = session.stats()
            memory = model.memory_stats()
    except moestream.MoestreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    hits, misses = stats["expert_cache_hits"], stats["expert_cache_misses"]
    print(f"stopped:  {generation.stop_reason.name.lower()} after {len(generation.tokens)} tokens", file=sys.stderr)
    print(f"prompt:   {stats['n_prompt_tokens']} tokens at {stats['prompt_tokens_per_second']:.1f} tok/s",
          file=sys.stderr)
    print(f"decode:   {stats['n_decode_tokens']} tokens at {stats['decode_tokens_per_second']:.1f} tok/s",
          file=sys.stderr)
    print(f"experts:  {stats['expert_bytes_read'] / 2**20:.2f} MiB read, cache hit rate "
          f"{100 * hits / max(hits + misses, 1):.1f}%", file=sys.stderr)
    print(f"memory:   {memory['resident_weight_bytes'] / 2**20:.1f} MiB resident weights, process peak "
          f"{memory['process_peak_rss_bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
