"""GET /v1/feed over HTTP on a server holding 10,000 published videos. Prints p50 / p95 of warm browses with and
without a steer sentence (each sentence's topics already encoded once), the cold first browse (the caption matrix
built from the store's vector blobs) and the machine's load average (the CPU is shared: read figures with it).

The 10,000 captions are tests/data/feed's 224, each with up to 45 variations ("..., filmed at dawn"), encoded
with MiniLM once and cached in --cache (first run: about a minute on 2 cores); jobs, likes, remixes, follows,
a saved steer and two see-less go straight into the store. No workers run (devices=()): nothing else uses the CPU.

Run: .venv/bin/python bench/feed_server.py [--items 10000] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "feed"
STYLES = ["filmed at dawn", "in slow motion", "shot on 35mm film", "at golden hour", "as a timelapse",
          "in black and white", "from a drone", "handheld and shaky", "in the rain", "at night", "in winter",
          "in pastel colours", "as a stop-motion animation", "with a fisheye lens", "in a 1980s VHS look",
          "close up", "wide shot", "with dramatic lighting", "in soft focus", "seen through a window",
          "in a watercolour style", "in claymation", "under neon lights", "in fog", "on a summer afternoon",
          "in the style of a documentary", "with a tracking shot", "in vertical format", "as a dream sequence",
          "with long shadows", "in autumn", "at sunset", "from a low angle", "from above", "in anime style",
          "in a cinematic widescreen look", "with warm tones", "with cold blue tones", "in 8-bit pixel art",
          "in a sketchbook style", "during a storm", "in the snow", "with lens flares", "on an old phone camera",
          "in hyperreal detail"]
STEERS = ["more space videos, fewer romantic comedies", "no horror please", "only cats",
          "I'm tired of sports, show me lots of cooking", "a bit more wildlife"]


def captions(n: int) -> list[str]:
    base = [json.loads(line)["caption"] for line in (DATA / "captions.jsonl").open()]
    out = list(base) + [f"{c}, {s}" for s in STYLES for c in base]
    if n > len(out):
        raise SystemExit(f"at most {len(out)} distinct captions")
    return out[:n]


def fill(server, texts: list[str], vectors, rng: random.Random) -> None:
    """Jobs, feed items (with vectors), likes, remixes, follows, a saved steer and see-less, in one transaction."""
    from sora_cli.server.store import new_id

    store = server.store
    authors = [store.user(f"author{i}")["id"] for i in range(50)]
    viewer = store.user("viewer")["id"]
    now = time.time()
    jobs, items = [], []
    for text, vector in zip(texts, vectors, strict=True):
        video_id, author, age = new_id("video_"), rng.choice(authors), rng.uniform(0, 14 * 86400)
        jobs.append((video_id, author, "generate", "completed", 100, "{}", "tiny", text, "4", "832x480",
                     int(now - age), int(now - age)))
        items.append((video_id, author, text, now - age, vector.astype("float32").tobytes()))
    ids = [j[0] for j in jobs]
    with closing(sqlite3.connect(server.settings.db_path)) as db, db:
        db.executemany("INSERT INTO jobs (id, user_id, kind, status, progress, request, model, prompt, seconds, "
                       "size, created_at, completed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
        db.executemany("INSERT INTO feed_items VALUES (?,?,?,?,?)", items)
        likes = {(rng.choice(ids), rng.choice(authors)) for _ in range(20000)}
        db.executemany("INSERT INTO feed_likes VALUES (?,?,?)", [(v, u, int(now)) for v, u in likes])
        db.executemany("INSERT INTO jobs (id, user_id, kind, status, progress, request, model, prompt, seconds, "
                       "size, created_at, remixed_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       [(new_id("video_"), rng.choice(authors), "remix", "completed", 100, "{}", "tiny", "a remix",
                         "4", "832x480", int(now), rng.choice(ids)) for _ in range(1000)])
        db.executemany("INSERT INTO follows VALUES (?,?,?)", [(viewer, a, int(now)) for a in authors[:5]])
        db.execute("INSERT INTO feed_steers (user_id, created_at, sentence, facets, weight) VALUES (?,?,?,?,1.0)",
                   (viewer, now - 86400, "more ocean", json.dumps([{"kind": "more", "topic": "ocean",
                                                                      "weight": 1.0}])))
        db.executemany("INSERT INTO feed_see_less VALUES (?,?,?,?)",
                       [(viewer, ids[i], texts[i], now - 3600) for i in (3, 40)])


def timings(api: httpx.Client, params_of, count: int) -> tuple[list[float], list[float]]:
    """(wall ms, server ms from Server-Timing) of `count` GET /v1/feed."""
    wall, app = [], []
    for i in range(count):
        started = time.perf_counter()
        response = api.get("/v1/feed", params=params_of(i))
        wall.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        app.append(float(response.headers["server-timing"].split("dur=")[1]))
    return wall, app


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sora-feed-bench-cache")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

    from sora_cli.feed.browse import caption_vectors, load_encoder
    from sora_cli.server.running import serve_local

    texts = captions(args.items)
    started = time.perf_counter()
    vectors = caption_vectors(load_encoder(), texts, args.cache)  # cached across runs
    print(f"{len(texts)} captions encoded or read from {args.cache} in {time.perf_counter() - started:.1f} s")
    users = {"admin": "admin", "viewer": "user", **{f"author{i}": "user" for i in range(50)}}
    with tempfile.TemporaryDirectory() as tmp, \
            serve_local(Path(tmp), users, cache=args.cache / "server", devices=()) as server:
        fill(server, texts, vectors, random.Random(7))
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.keys['viewer']}"},
                           timeout=300)
        cold = timings(api, lambda i: {"limit": 20}, 1)
        print(f"cold first browse (loads MiniLM for the saved steer, reads {len(texts)} vectors): "
              f"{cold[0][0]:.0f} ms")
        for sentence in STEERS:  # each sentence's topics encoded once, as a user's repeated browse would have
            timings(api, lambda i, s=sentence: {"limit": 20, "steer": s}, 1)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        for label, params_of in (("no steer", lambda i: {"limit": 20}),
                                 ("with steer", lambda i: {"limit": 20, "steer": STEERS[i % len(STEERS)]})):
            wall, app = timings(api, params_of, args.requests)
            print(f"GET /v1/feed {label:10s} n={len(wall)}  wall p50 {pct(wall, 50):6.1f} ms  p95 {pct(wall, 95):6.1f}"
                  f" ms   server p50 {pct(app, 50):6.1f} ms  p95 {pct(app, 95):6.1f} ms")
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
