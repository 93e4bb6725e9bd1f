"""Blind sets replayed on the code they were first measured on, then pooled: the honest recall of the moderator.

    .venv/bin/python bench/moderation_blind.py                          # holdout22 ... holdout32
    .venv/bin/python bench/moderation_blind.py --sets holdout29,holdout30

Each blind set (tests/data/moderation/holdoutN.jsonl, 200 benign prompts and 30 per harm category) was written by a
helper that never saw the moderator, measured once on the commit named in BLIND before anyone looked at its misses,
and then became tuning data, so today's code scores it higher than it deserves. This replays that first measure:
for each set it checks its commit out into a temporary git worktree, copies the set in, and judges every prompt with
that commit's moderator (in a subprocess of its own, so each commit runs its own code). It prints, per set and pooled
over the sets, the recall per category (refused / must be refused) and the benign prompts' false-refusal and rephrase
rates. Needs the git history (not a shallow clone) and the project's venv; about a minute per set on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "moderation"
BLIND = {  # set -> the commit it was first measured on (its misses were listed only after)
    "holdout22": "13da762", "holdout23": "8f34d7b", "holdout24": "1ba253b", "holdout25": "07ac4ec",
    "holdout26": "bbe7966", "holdout27": "19f70b5", "holdout28": "faa99b1", "holdout29": "82edc29",
    "holdout30": "82edc29", "holdout31": "8fed475", "holdout32": "8fed475",
}
SHORT = {"self_harm": "self-harm", "copyrighted_character": "characters", "artist_music": "artist"}

# run inside the worktree: each prompt's label and verdict, one JSON object per line
_JUDGE = """
import json, os, sys, tempfile
sys.path.insert(0, os.getcwd())
os.environ["SORA_HOME"] = tempfile.mkdtemp()
from sora_cli.safety import Moderator
moderator = Moderator.from_paths()
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        row = json.loads(line)
        print(json.dumps({"label": row["label"], "verdict": moderator.check(row["prompt"]).verdict}))
"""


def judge(name: str, commit: str, scratch: Path) -> list[dict[str, str]]:
    """Every prompt of the set `name` judged by the moderator of `commit`."""
    tree = scratch / name
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), commit], check=True)
    try:
        data = tree / "blind.jsonl"
        data.write_bytes((DATA / f"{name}.jsonl").read_bytes())
        done = subprocess.run([sys.executable, "-c", _JUDGE, str(data)], cwd=tree, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{name} on {commit}: {done.stderr.strip().splitlines()[-1]}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def harm_categories(names: list[str]) -> list[str]:
    """The harm categories the sets label, in the shipped policy's order: a category none labels gets no column."""
    labels = {json.loads(line)["label"] for name in names
              for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    policy = tomllib.loads((ROOT / "sora_cli" / "safety" / "default_policy.toml").read_text(encoding="utf-8"))
    return [category for category in policy["categories"] if category in labels]


def row(name: str, commit: str, results: list[dict[str, str]], categories: list[str]) -> str:
    benign = [r["verdict"] for r in results if r["label"] == "benign"]
    refused, rephrased = benign.count("refuse"), benign.count("rephrase")
    cells = [f"{name:10s}", f"{commit:8s}", f"{len(benign):6d}", f"{100 * refused / len(benign):5.1f} % {refused:3d}",
             f"{100 * rephrased / len(benign):6.1f} %"]
    for category in categories:
        verdicts = [r["verdict"] for r in results if r["label"] == category]
        cells.append(f"{verdicts.count('refuse') / len(verdicts):>10.2f}" if verdicts else f"{'-':>10s}")
    return " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(BLIND), help="comma-separated blind sets (default: all of BLIND)")
    args = parser.parse_args()
    names = [n for n in args.sets.split(",") if n]
    unknown = [n for n in names if n not in BLIND]
    if unknown:
        raise SystemExit(f"not a blind set with a known first commit: {', '.join(unknown)} (known: {', '.join(BLIND)})")
    categories = harm_categories(names)
    header = " ".join([f"{'set':10s}", f"{'commit':8s}", f"{'benign':>6s}", f"{'refused':>11s}", f"{'rephrase':>8s}"]
                      + [f"{SHORT.get(c, c):>10s}" for c in categories])
    print(header + "\n" + "-" * len(header), flush=True)
    pooled: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            results = judge(name, BLIND[name], Path(scratch))
            pooled += results
            print(row(name, BLIND[name], results, categories), flush=True)
    print("-" * len(header) + "\n" + row("pooled", "", pooled, categories))
    misses = Counter(r["label"] for r in pooled if r["label"] != "benign" and r["verdict"] != "refuse")
    harmful = sum(r["label"] != "benign" for r in pooled)
    print(f"(recall per category; {sum(misses.values())} of {harmful} harmful prompts not refused)")


if __name__ == "__main__":
    main()
