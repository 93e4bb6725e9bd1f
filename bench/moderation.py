"""Prompt moderation against the labelled prompt set in tests/data/moderation/prompts.jsonl.

    .venv/bin/python bench/moderation.py                 # all prompts, shipped default policy
    .venv/bin/python bench/moderation.py --split test    # the held-out half only
    .venv/bin/python bench/moderation.py --misses        # also list what was missed or wrongly refused

Prints, per category, the recall (refused / must be refused; target >= 0.95 each) and how many only got a
"rephrase"; on the benign prompts the false-refusal rate (target <= 3 %) and the rephrase rate, near misses
apart; the layer that decided; the warm latency of one check (p50/p95, allowed and refused prompts apart);
MiniLM's load time; and a leak check: the highest cosine similarity between any evaluation prompt and any
sentence of the policy (examples and anchors), which were written apart from the evaluation set.
Runs offline in a temporary SORA_HOME, on the shipped default policy with no rights registry.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data" / "moderation" / "prompts.jsonl"
RECALL_TARGET, FALSE_REFUSAL_TARGET = 0.95, 0.03


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["all", "dev", "test", "holdout"], default="all")
    parser.add_argument("--misses", action="store_true", help="list missed and wrongly refused prompts")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if args.split == "all" or r["split"] == args.split]

    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        os.environ["SORA_HOME"] = str(Path(tmp) / "home")
        from sora_cli.safety import Moderator

        moderator = Moderator.from_paths()
        started = time.perf_counter()
        moderator.warm_up()  # first run also encodes the policy's sentences into the cache folder
        load = time.perf_counter() - started
        cold = Moderator.from_paths()
        started = time.perf_counter()
        cold.warm_up()  # with the cache warm, as every later run is
        cached_load = time.perf_counter() - started

        for r in rows[:5]:
            moderator.check(r["prompt"])  # warm the kernels before timing
        latency: dict[str, list[float]] = defaultdict(list)
        decisions = []
        for r in rows:
            started = time.perf_counter()
            d = moderator.check(r["prompt"])
            latency[d.verdict].append((time.perf_counter() - started) * 1000)
            decisions.append(d)
        model = moderator._ensure_model()
        prompts = model.encoder.encode([r["prompt"] for r in rows])
        leak = float((prompts @ model.vectors.T).max())

    print(f"{len(rows)} prompts ({args.split}): {sum(r['label'] != 'benign' for r in rows)} to refuse, "
          f"{sum(r['label'] == 'benign' for r in rows)} benign "
          f"({sum(bool(r.get('near_miss')) for r in rows)} near misses)\n")
    print(f"{'category':<24}{'n':>4}{'refused':>9}{'rephrase':>10}{'recall':>8}  right category")
    worst = 1.0
    for cat in moderator.policy.categories:
        mine = [(r, d) for r, d in zip(rows, decisions, strict=True) if r["label"] == cat]
        if not mine:
            continue
        refused = sum(d.verdict == "refuse" for _, d in mine)
        grey = sum(d.verdict == "rephrase" for _, d in mine)
        right = sum(d.verdict == "refuse" and d.category == cat for _, d in mine)
        recall = refused / len(mine)
        worst = min(worst, recall)
        print(f"{cat:<24}{len(mine):>4}{refused:>9}{grey:>10}{recall:>8.2f}  {right}/{len(mine)}")
    benign = [(r, d) for r, d in zip(rows, decisions, strict=True) if r["label"] == "benign"]
    false = sum(d.verdict == "refuse" for _, d in benign)
    grey = sum(d.verdict == "rephrase" for _, d in benign)
    near = [(r, d) for r, d in benign if r.get("near_miss")]
    print(f"\nbenign: {false}/{len(benign)} refused = {false / len(benign):.1%} false refusals "
          f"(near misses {sum(d.verdict == 'refuse' for _, d in near)}/{len(near)}); "
          f"{grey} asked to rephrase ({grey / len(benign):.1%})")
    layers = Counter(d.layer for d in decisions if d.verdict != "allow")
    print("decided by layer: " + ", ".join(f"{k} {v}" for k, v in sorted(layers.items())))
    for verdict, values in sorted(latency.items()):
        print(f"warm check, {verdict:<8}: p50 {pct(values, 50):6.1f} ms  p95 {pct(values, 95):6.1f} ms  "
              f"(n={len(values)})")
    print(f"MiniLM load: {load:.2f} s first run (import, weights, encoding the policy), {cached_load:.2f} s "
          f"with the sentence cache")
    print(f"leak check: highest cosine between an evaluation prompt and a policy sentence {leak:.2f}")
    if args.misses:
        print()
        for r, d in zip(rows, decisions, strict=True):
            wrong = (r["label"] == "benign") != (d.verdict != "refuse")
            if wrong or d.verdict == "rephrase":
                kind = "GREY" if not wrong else "MISS" if r["label"] != "benign" else "FALSE"
                print(f"{kind} [{r['label']}] {r['prompt']!r} -> "
                      f"{d.verdict} {d.category or ''} {d.layer or ''} {list(d.triggers)} {d.score} {d.margin}")
    ok = worst >= RECALL_TARGET and false / len(benign) <= FALSE_REFUSAL_TARGET
    print(f"\nrecall >= {RECALL_TARGET} in every category and false refusals <= {FALSE_REFUSAL_TARGET:.0%}: "
          + ("PASS" if ok else "MISS"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
