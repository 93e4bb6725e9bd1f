"""`sora serve`: OpenAI's `/v1/videos` API on FastAPI, jobs in SQLite, one warm worker process per device.

    settings.py   ServerSettings: limits, devices, where the database and media live
    store.py      SQLite (WAL): users, API key hashes, jobs (the persistent queue), files, webhooks, deliveries
    auth.py       API keys (shown once, stored as sha256), users and roles
    schemas.py    the OpenAI error envelope, request fields and their limits, the Video object
    admission.py  a create/remix/edit/extension -> a GenerateRequest checked by Studio.prepare -> a queued job
    pool.py       start-up recovery, the worker processes (start, watch, stop), cancel
    worker.py     a worker process: one Studio kept warm, progress, cancel, re-queue on stop; spritesheets
    webhooks.py   Standard-Webhooks-signed deliveries of video.completed / video.failed, with retries
    deps.py       the request's user (401), request bodies (415) and uploads (413, 415)
    videos.py     /v1/videos;  extras.py: files, characters, webhook endpoints, admin
    app.py        create_app: lifespan, body limit, every error in OpenAI's envelope, health, OpenAPI
    running.py    uvicorn in a thread (tests, benchmarks, the example)

Importing this package is light; fastapi is imported by deps/videos/extras/app, uvicorn by running.py.
"""
