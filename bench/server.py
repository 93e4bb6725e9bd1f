"""`sora serve` under load, after kill -9, and against a schema fuzzer. Prints three sets of figures:

1. latency: p50 / p99 of create (POST /v1/videos) and retrieve (GET /v1/videos/{id}) with N concurrent clients
   (default 50, arriving within 1 s), each creating a job and polling it as `openai-poll-after-ms` says (250 ms),
   while the one CPU worker generates (tiny model, 128x128, 1 s, 4 steps); each client cancels its job and
   creates another every `--recreate` s (±20 %).
2. recovery: per trial, a fresh server gets 4 jobs and is killed with SIGKILL while a job is in a given phase
   (early: up to the first step; late denoise; decode/encode/sign), then restarted; counts jobs lost (not
   completed), outputs corrupted (sha256 differs from the record, C2PA not intact) and half-written files left
   (target: all 0).
3. schemathesis (if installed) against the server's own OpenAPI document, every phase, for `--fuzz-time` s, on
   a server with no workers (so fuzzed jobs queue instead of running); counts the server's 5xx answers.

Run: .venv/bin/python bench/server.py [--clients 50] [--duration 30] [--fuzz-time 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import bench_env, build_tiny

JOB = {"size": "128x128", "seconds": "1", "fps": 8, "steps": 4}
SERVE = "import sys, typer; from sora_cli.cli.serve import serve; typer.run(serve)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_key(env: dict[str, str]) -> str:
    code = ("from sora_cli.config import Paths; from sora_cli.server.settings import ServerSettings; "
            "from sora_cli.server.store import Store; from sora_cli.server import auth; "
            "s = Store(ServerSettings(Paths.from_env()).db_path); auth.add_user(s, 'bench'); "
            "print(auth.create_key(s, 'bench')[1])")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def start(env: dict[str, str], port: int, log: Path, poll_ms: int = 250) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "--port", str(port), "--poll-after-ms", str(poll_ms),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server did not start in 180 s")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else float("nan")


# -- 1. latency ----------------------------------------------------------------------------------------------

def _server_time(response: httpx.Response) -> float:
    """The server's own time for the request (its Server-Timing header), in seconds."""
    value = response.headers.get("server-timing", "dur=nan").rpartition("dur=")[2]
    return float(value) / 1000


async def _client(http: httpx.AsyncClient, until: float, recreate: float, creates: list, gets: list,
                  codes: collections.Counter) -> None:
    await asyncio.sleep(random.uniform(0, 1))  # clients arrive within a second, not in the same millisecond
    recreate *= random.uniform(0.8, 1.2)
    while time.monotonic() < until:
        try:
            await _session(http, until, recreate, creates, gets, codes)
        except httpx.TransportError as exc:  # counted, and the client starts over
            codes[type(exc).__name__] += 1


async def _session(http: httpx.AsyncClient, until: float, recreate: float, creates: list, gets: list,
                   codes: collections.Counter) -> None:
    video_id, made_at = None, 0.0
    while time.monotonic() < until:
        if video_id is None or time.monotonic() - made_at > recreate:
            if video_id is not None:
                await http.post(f"/v1/videos/{video_id}/cancel")
            started = time.perf_counter()
            response = await http.post("/v1/videos", json={"prompt": "a kite over the sea", **JOB})
            creates.append((time.perf_counter() - started, _server_time(response)))
            codes[response.status_code] += 1
            if response.status_code != 200:
                await asyncio.sleep(float(response.headers.get("retry-after", 1)))
                continue
            video_id, made_at = response.json()["id"], time.monotonic()
        started = time.perf_counter()
        response = await http.get(f"/v1/videos/{video_id}")
        gets.append((time.perf_counter() - started, _server_time(response)))
        codes[response.status_code] += 1
        if response.json().get("status") in ("completed", "failed"):
            codes[response.json()["status"]] += 1
            video_id = None
        await asyncio.sleep(int(response.headers.get("openai-poll-after-ms", 250)) / 1000)


async def _load(url: str, key: str, clients: int, duration: float, recreate: float) -> tuple:
    creates: list[float] = []
    gets: list[float] = []
    codes: collections.Counter = collections.Counter()
    limits = httpx.Limits(max_connections=clients + 10)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as http:
        until = time.monotonic() + duration
        workers = (await http.get("/health")).json()["workers"]
        await asyncio.gather(*(_client(http, until, recreate, creates, gets, codes) for _ in range(clients)))
    return creates, gets, codes, workers


def latency(root: Path, clients: int, duration: float, recreate: float) -> None:
    env = bench_env(root)
    build_tiny(env)
    key, port = make_key(env), free_port()
    proc = start(env, port, root / "latency.log")
    try:
        creates, gets, codes, workers = asyncio.run(_load(f"http://127.0.0.1:{port}", key, clients, duration,
                                                            recreate))
    finally:
        stop(proc)
    print(f"latency, {clients} clients for {duration:g} s, {workers} worker (load average "
          f"{os.getloadavg()[0]:.2f}):")
    for name, samples in (("create", creates), ("retrieve", gets)):
        seen, inside = [s[0] for s in samples], [s[1] for s in samples]
        print(f"  {name:<8} p50 {pct(seen, 50):7.1f} ms   p99 {pct(seen, 99):7.1f} ms   ({len(samples)} requests; "
              f"inside the server p50 {pct(inside, 50):.1f} ms, p99 {pct(inside, 99):.1f} ms)")
    print(f"  answers {dict(sorted(codes.items(), key=str))} (completed / failed: videos seen finished; failed "
          f"ones include those cancelled)")


# -- 2. recovery after kill -9 ----------------------------------------------------------------------------------

# progress: 5 + 85 * step / steps while denoising (6 steps: 19, 33, ... 90), then 92 decode, 96 encode + sign
PHASES = {"early": (0, 20), "late denoise": (40, 90), "decode/encode/sign": (92, 99)}


def trial(root: Path, phase: str, cache: Path) -> dict:
    from sora_cli.provenance.check import check_files

    env = bench_env(root)
    (root / "home").mkdir(parents=True)
    (root / "home" / "cache").symlink_to(cache)  # built models, moderation vectors: once for all trials
    build_tiny(env)
    key, port = make_key(env), free_port()
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    proc = start(env, port, root / "server.log", poll_ms=100)
    # the decode/encode/sign trial makes longer clips (256x256, 33 frames), so that phase lasts long enough to hit
    longer = {"size": "256x256", "seconds": "2", "fps": 16} if phase == "decode/encode/sign" else {}
    job = {**JOB, "steps": 6, **longer}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        ids = [http.post("/v1/videos", json={"prompt": f"job {n}", **job}).json()["id"] for n in range(4)]
        low, high = PHASES[phase]
        deadline, killed = time.monotonic() + 300, None
        while killed is None and time.monotonic() < deadline:
            running = [v for v in (http.get(f"/v1/videos/{i}").json() for i in ids) if v["status"] == "in_progress"]
            while running and killed is None and time.monotonic() < deadline:  # only the running one, tightly
                video = http.get(f"/v1/videos/{running[0]['id']}").json()
                if video["status"] != "in_progress" or video["progress"] > high:
                    break
                if video["progress"] >= low:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed = (video["id"], video["progress"])
    if killed is None:
        stop(proc)
        return {"phase": phase, "killed": None}
    proc = start(env, port, root / "server.log", poll_ms=100)
    try:
        final = {}
        deadline = time.monotonic() + 300
        while len(final) < len(ids) and time.monotonic() < deadline:
            for video_id in set(ids) - set(final):
                video = httpx.get(f"{url}/v1/videos/{video_id}", headers=headers, timeout=10).json()
                if video["status"] in ("completed", "failed"):
                    final[video_id] = video
            time.sleep(0.2)
        corrupted = 0
        for video_id, video in final.items():
            if video["status"] != "completed":
                continue
            path = root / f"{video_id}.mp4"
            path.write_bytes(httpx.get(f"{url}/v1/videos/{video_id}/content", headers=headers, timeout=60).content)
            [check] = check_files([path], anchors_pem=None, library=None)
            if hashlib.sha256(path.read_bytes()).hexdigest() != video["sha256"] or check.status not in (
                    "trusted", "intact_untrusted"):
                corrupted += 1
    finally:
        stop(proc)
    media = root / "home" / "data" / "server" / "media"
    return {"phase": phase, "killed": killed, "lost": sum(final.get(i, {}).get("status") != "completed" for i in ids),
            "corrupted": corrupted, "partial_files": len(list(media.glob(".*")))}


def recovery(base: Path) -> None:
    (base / "cache").mkdir(parents=True)
    print("recovery after kill -9 (4 jobs per trial, the server restarted once):")
    totals = collections.Counter()
    for number, phase in enumerate(PHASES):
        result = trial(base / f"trial{number}", phase, base / "cache")
        if result["killed"] is None:
            print(f"  {phase:<18} no job was seen in that phase: not killed")
            continue
        video_id, progress = result["killed"]
        print(f"  {phase:<18} killed at {progress:>2} %: lost {result['lost']}, corrupted {result['corrupted']}, "
              f"half-written files left {result['partial_files']}")
        totals.update({k: result[k] for k in ("lost", "corrupted", "partial_files")})
    print(f"  total: lost {totals['lost']}, corrupted {totals['corrupted']}, half-written files "
          f"{totals['partial_files']} (target 0)")


# -- 3. schemathesis ------------------------------------------------------------------------------------------

class StatusCounter:
    """ASGI wrapper counting the answers by status, so 5xx are counted at the source."""

    def __init__(self, app):
        self.app, self.counts = app, collections.Counter()

    async def __call__(self, scope, receive, send):
        async def counted(message):
            if message["type"] == "http.response.start":
                self.counts[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)


def fuzz(root: Path, seconds: int) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if exe is None:
        print("schemathesis: not installed (.venv/bin/pip install schemathesis): skipped")
        return
    os.environ.update(bench_env(root))
    from sora_cli.config import Paths
    from sora_cli.server import auth
    from sora_cli.server.app import create_app
    from sora_cli.server.running import running
    from sora_cli.server.settings import ServerSettings
    from sora_cli.server.store import Store

    settings = ServerSettings(Paths.from_env(), devices=(), max_queue=100_000)
    app = StatusCounter(create_app(settings))
    store = Store(settings.db_path)
    auth.add_user(store, "fuzz", "admin")
    key = auth.create_key(store, "fuzz")[1]
    with running(app) as url:
        done = subprocess.run([exe, "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {key}",
                               "--checks", "not_a_server_error", "--max-time", str(seconds), "--workers", "2",
                               "--request-timeout", "30"], capture_output=True, text=True)
    summary = [line.strip() for line in done.stdout.splitlines() if "generated" in line or "passed" in line]
    total = sum(app.counts.values())
    errors = sum(n for status, n in app.counts.items() if status >= 500)
    print(f"schemathesis {seconds} s, every phase: {total} requests, {errors} answered 5xx (target 0); "
          f"statuses {dict(sorted(app.counts.items()))}; schemathesis: {summary[-1] if summary else done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--recreate", type=float, default=10.0, help="seconds between a client's creates")
    parser.add_argument("--fuzz-time", type=int, default=60)
    parser.add_argument("--skip", default="", help="comma list of latency,recovery,fuzz to skip")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="sora-bench-server-") as tmp:
        root = Path(tmp)
        if "latency" not in skip:
            latency(root / "latency", args.clients, args.duration, args.recreate)
        if "recovery" not in skip:
            recovery(root / "recovery")
        if "fuzz" not in skip:
            fuzz(root / "fuzz", args.fuzz_time)
    return 0


if __name__ == "__main__":
    sys.exit(main())
