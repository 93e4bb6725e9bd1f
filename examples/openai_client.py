"""Drive `sora serve` with the official `openai` SDK, unchanged: only base_url and api_key differ.

    # against a running server (`sora serve`, a key from `sora server user add NAME`):
    .venv/bin/python examples/openai_client.py --base-url http://127.0.0.1:8000/v1 --api-key sk-sora-…
    # or with no arguments: starts a throw-away local server (built-in tiny model) in a temp folder first
    .venv/bin/python examples/openai_client.py [--out clips/]

Sizes, seconds and steps are kept tiny so the demo runs in seconds on a CPU; the tiny model makes noise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import warnings
from pathlib import Path

from openai import OpenAI

# the SDK marks its video methods deprecated because OpenAI's hosted Sora API closes; this server stays
warnings.filterwarnings("ignore", message="The Sora API is scheduled")

OURS = {"fps": 8, "steps": 2}  # sora-cli extensions to the API, sent as any extra field: seed, negative_prompt too


def demo(client: OpenAI, out: Path) -> None:
    video = client.videos.create_and_poll(prompt="a paper boat on a river", size="128x128", seconds="1",
                                          extra_body=OURS)  # polls as the openai-poll-after-ms header says
    print(f"created {video.id}: {video.status}, {video.seconds} s at {video.size}")
    if video.status != "completed":
        raise SystemExit(f"failed: {video.error}")
    out.mkdir(parents=True, exist_ok=True)
    client.videos.download_content(video.id).write_to_file(out / "boat.mp4")
    client.videos.download_content(video.id, variant="thumbnail").write_to_file(out / "boat.jpg")
    client.videos.download_content(video.id, variant="spritesheet").write_to_file(out / "boat-sprites.jpg")
    print(f"downloaded {out / 'boat.mp4'} (signed with C2PA: `sora verify-provenance {out / 'boat.mp4'}`)")

    remix = client.videos.poll(client.videos.remix(video.id, prompt="the same boat in a snowstorm").id)
    print(f"remixed {remix.id} from {remix.remixed_from_video_id}: {remix.status}")
    client.videos.download_content(remix.id).write_to_file(out / "boat-snow.mp4")

    print("your videos:", ", ".join(f"{v.id} ({v.status})" for v in client.videos.list(limit=10)))
    deleted = client.videos.delete(remix.id)
    print(f"deleted {deleted.id}: {deleted.deleted}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="e.g. http://127.0.0.1:8000/v1 (default: start a local server)")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--out", type=Path, default=Path("openai-demo"))
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        base_url, api_key = args.base_url, args.api_key
        if base_url is None:
            from sora_cli.server.running import serve_local

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sora-serve-demo-")))
            server = stack.enter_context(serve_local(root, {"demo": "user"}, poll_after_ms=200))
            base_url, api_key = f"{server.url}/v1", server.keys["demo"]
            print(f"started a local server at {server.url} (state in {root})")
        demo(OpenAI(base_url=base_url, api_key=api_key), args.out)


if __name__ == "__main__":
    main()
