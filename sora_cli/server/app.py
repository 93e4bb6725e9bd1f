"""The FastAPI application: state, lifespan (recovery, workers, webhooks), the body limit, every error in
OpenAI's envelope, the health check (the one route without a key) and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sora_cli import __version__
from sora_cli.config import Config
from sora_cli.produce import Studio
from sora_cli.server.admission import Admission
from sora_cli.server.deps import ServerState, User
from sora_cli.server.pool import WorkerPool
from sora_cli.server.schemas import ApiError, envelope
from sora_cli.server.settings import MB, ServerSettings
from sora_cli.server.store import Store
from sora_cli.server.webhooks import Deliverer, enqueue

log = logging.getLogger("sora_cli.server")


class BodyLimit:
    """413 for a body over the limit, declared (Content-Length) or streamed (chunked), before it is stored."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse(envelope(413, f"the request body is larger than {self.limit // MB} MB",
                                             code="request_too_large"), status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, f"the request body is larger than {self.limit // MB} MB",
                                   code="request_too_large")
            return message

        await self.app(scope, limited, send)


class ServerTiming:
    """`Server-Timing: app;dur=…` (ms, to the response's start) on every answer, so a client can tell the
    server's time from the network's and its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, timed)


def create_app(settings: ServerSettings, config: Config | None = None, *, registry=None,
               webhook_transport=None) -> FastAPI:
    """The server; its worker processes start (after recovery) and stop with the app's lifespan."""
    from sora_cli.plugins import load_registry

    settings.make_dirs()
    config = config or Config.load(settings.paths)
    registry = registry or load_registry()
    store = Store(settings.db_path)
    studio = Studio(config, registry, source="server")  # for the library; the workers' Studios make the videos
    deliverer = Deliverer(store, settings.webhook_backoff, settings.webhook_timeout, webhook_transport,
                          allow_private=settings.webhook_allow_private)

    def finished(job: dict) -> None:
        if enqueue(store, job):
            deliverer.wake()

    pool = WorkerPool(settings, store, on_finish=finished)
    server = ServerState(settings, config, store, studio, Admission(settings, store, config, registry), pool, deliverer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.devices:
            _build_default_model(settings, config, registry)
        app.state.recovered = pool.start()  # on the loop's thread, which lives as long as the server
        deliverer.start()
        watching = asyncio.create_task(_watch(pool))
        try:
            yield
        finally:
            watching.cancel()
            await run_in_threadpool(pool.stop)
            deliverer.stop()

    app = FastAPI(title="sora-cli server", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None, description="OpenAI's /v1/videos API on local diffusers pipelines.")
    app.state.server = server
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MB)  # + room for the form's other fields
    app.add_middleware(ServerTiming)
    _errors(app)

    @app.get("/health", tags=["health"], summary="Health check (no key needed)")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "workers": pool.alive()}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: User) -> dict:
        return app.openapi()

    from sora_cli.feed.index import CaptionIndex
    from sora_cli.server import cameo_routes, extras, feed, videos

    app.state.feed = CaptionIndex()  # MiniLM loads on the first publish or browse that needs it, not here
    app.include_router(extras.router)  # /v1/videos/characters before /v1/videos/{video_id}
    app.include_router(videos.router)
    app.include_router(feed.router)
    app.include_router(cameo_routes.router)
    return app


def _build_default_model(settings: ServerSettings, config: Config, registry) -> None:
    """A built-in default model is built once per machine: here, before the workers start, so that neither
    they nor the first request build it too."""
    from sora_cli.engines import MODEL_LOADING
    from sora_cli.errors import SoraError
    from sora_cli.models import default_model, resolve_model

    try:
        with MODEL_LOADING:
            resolve_model(settings.model or default_model("t2v", config), config, registry)
    except SoraError as exc:  # a request naming it gets the same error, where a client sees it
        log.warning("default model: %s", exc)


async def _watch(pool: WorkerPool) -> None:
    while True:
        await asyncio.sleep(1.0)
        pool.watch()  # quick (a poll per worker); a restart happens on this thread, as the first start did


def _errors(app: FastAPI) -> None:
    """Every error is OpenAI's envelope; a request FastAPI cannot validate is a 400, as OpenAI answers."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        location = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header")]
        param = ".".join(location) or None
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg", "invalid request"))
        return JSONResponse(envelope(400, message, code="invalid_value", param=param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(envelope(exc.status_code, str(exc.detail), code=code), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(envelope(500, f"internal error: {type(exc).__name__}", code="internal_error"),
                            status_code=500)
