#!/usr/bin/env bash
# Batch on the built-in tiny model, then check every clip's provenance. Data on stdout, progress on stderr.
set -euo pipefail
here=$(dirname "$0")
out=${1:-out}
sora batch "$here/prompts.jsonl" --out-dir "$out" --model tiny --steps 2 --dry-run
sora batch "$here/prompts.jsonl" --out-dir "$out" --model tiny --steps 2 --resume --json > "$out.videos.jsonl"
sora verify-provenance --json "$out" > "$out.verdicts.jsonl"
echo "videos: $out.videos.jsonl, verdicts: $out.verdicts.jsonl, manifest: $out/manifest.jsonl" >&2
