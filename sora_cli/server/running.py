"""Run the app on uvicorn in a background thread (tests, benchmarks, embedding): `with running(app) as url:`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@contextmanager
def running(app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
            startup_timeout: float = 120.0) -> Iterator[str]:
    """Serve `app` on a socket bound here (port 0: a free one, no race); yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=30,
                                             timeout_keep_alive=75))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sora-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the server did not start (see its log)")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


@dataclass
class LocalServer:
    url: str
    keys: dict[str, str]  # user name -> API key
    settings: Any
    store: Any
    app: Any


@contextmanager
def serve_local(root: Path, users: dict[str, str] | None = None, cache: Path | None = None,
                **overrides: Any) -> Iterator[LocalServer]:
    """A whole server with its state under `root` (config/, data/, cache/ unless `cache` is given: built models
    and the moderation model's vectors can be shared), on a free loopback port, and a fresh key per user
    (created with the role given where the user is new): for tests, benchmarks, demos."""
    from sora_cli.config import Paths
    from sora_cli.server import auth
    from sora_cli.server.app import create_app
    from sora_cli.server.settings import ServerSettings
    from sora_cli.server.store import Store

    settings = ServerSettings(Paths(root / "config", root / "data", cache or root / "cache"), **overrides)
    app = create_app(settings)
    store = Store(settings.db_path)
    keys = {}
    for name, role in ({"alice": "admin"} if users is None else users).items():
        if store.user(name) is None:
            auth.add_user(store, name, role)
        keys[name] = auth.create_key(store, name)[1]
    with running(app) as url:
        yield LocalServer(url, keys, settings, store, app)
