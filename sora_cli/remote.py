"""Remote mode: the making commands and batch run on a `sora serve` (or any OpenAI-style /v1/videos server).

    studio = RemoteStudio.connect("http://gpu-box:8000", config)     # the key: SORA_API_KEY, keyring or file
    job = studio.prepare(GenerateRequest(prompt="a paper boat"))    # checks that need no server, output path
    video = studio.run(job, report)                                  # create, poll, download, verify, record

The server does the checks a local run does (moderation, consent, marks, C2PA); the client adds one more:
the download is written beside its final name, its C2PA manifest is verified intact, and only then is it
renamed into place and recorded in the local library (under the server's id, with the server's address),
so `@last`, `sora library` and `verify-provenance` know it like a local video.

API keys: `SORA_API_KEY` first; else the OS keyring (service "sora-cli", one entry per server address and
SORA_HOME), else a JSON file in the config folder's `secrets/` that only the user can read (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.config import Config, Paths
from sora_cli.engines import ProgressEvent, Reporter, no_report
from sora_cli.errors import Cancelled, PolicyRefusal, ProvenanceInvalid, SoraError, UsageError
from sora_cli.requests import GenerateRequest, Video, random_seed

SERVER_ENV, KEY_ENV = "SORA_SERVER", "SORA_API_KEY"
SERVICE = "sora-cli"
# the request fields a server cannot honour; each is refused by name rather than silently dropped
LOCAL_ONLY = {"soundtrack": "--soundtrack", "soundtrack_model": "--soundtrack-model", "last_image": "--last-image",
              "device": "--device", "include_prompt": "--c2pa-include-prompt", "attest_consent": "--attest-consent"}


def server_url(option: str | None, config: Config | None = None) -> str | None:
    """--server, else $SORA_SERVER, else the `server` setting; normalised to scheme://host[:port][/prefix]."""
    raw = option or os.environ.get(SERVER_ENV) or (config.get("server") if config else None)
    if not raw:
        return None
    url = str(raw).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"server address must start with http:// or https://, got {raw!r}")
    return url.removesuffix("/v1")


def api_key(url: str, config: Config, keyring_backend: Any = None) -> str:
    """The API key for `url` ($SORA_API_KEY, the keyring, the 0600 file), or one line saying how to get one."""
    found = Credentials(config.paths, keyring_backend).get(url)
    if found is None:
        raise UsageError(f"no API key for {url}: run `sora login --server {url}` or set {KEY_ENV}")
    return found[0]


class Credentials:
    """API keys per server address, in the OS keyring or a 0600 file; never printed, never logged."""

    def __init__(self, paths: Paths, keyring_backend: Any = None, environ: dict[str, str] | None = None):
        from sora_cli.provenance.keystore import namespace_for

        self.file = paths.config_dir / "secrets" / "servers.json"
        self._namespace = namespace_for(paths.config_dir)
        self._backend = keyring_backend
        self._environ = os.environ if environ is None else environ

    def _keyring(self) -> Any:
        from sora_cli.provenance.keystore import usable_keyring

        if self._backend is None:
            try:
                import keyring

                self._backend = keyring.get_keyring()
            except Exception:  # noqa: BLE001 - a broken keyring install means the file
                return None
        return self._backend if usable_keyring(self._backend) else None

    def _user(self, url: str) -> str:
        return f"server:{url}:{self._namespace}"

    def _file_keys(self) -> dict[str, str]:
        try:
            return json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise UsageError(f"cannot read the saved server keys in {self.file}; remove it and log in again") from None

    def _write_file(self, keys: dict[str, str]) -> None:
        from sora_cli.media.atomic import atomic_path

        self.file.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.file.parent, 0o700)
        with atomic_path(self.file) as tmp:
            os.chmod(tmp, 0o600)  # before the key is written
            tmp.write_text(json.dumps(keys, indent=1), encoding="utf-8")

    def get(self, url: str) -> tuple[str, str] | None:
        """(key, where it came from) for this server, or None."""
        if self._environ.get(KEY_ENV):
            return self._environ[KEY_ENV], f"${KEY_ENV}"
        backend = self._keyring()
        if backend is not None:
            with contextlib.suppress(Exception):
                key = backend.get_password(SERVICE, self._user(url))
                if key:
                    return key, "the OS keyring"
        key = self._file_keys().get(url)
        return (key, str(self.file)) if key else None

    def save(self, url: str, key: str) -> str:
        """Keep the key (keyring first, else the 0600 file); returns where it went."""
        backend = self._keyring()
        if backend is not None:
            try:
                backend.set_password(SERVICE, self._user(url), key)
                return "the OS keyring"
            except Exception:  # noqa: BLE001 - a locked or refusing keyring: the file
                pass
        self._write_file({**self._file_keys(), url: key})
        return str(self.file)

    def delete(self, url: str) -> bool:
        found = False
        backend = self._keyring()
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.delete_password(SERVICE, self._user(url))
                found = True
        keys = self._file_keys()
        if keys.pop(url, None) is not None:
            self._write_file(keys)
            found = True
        return found


@dataclass(frozen=True)
class RemoteJob:
    """A request mapped onto one /v1/videos call; nothing sent yet."""

    request: GenerateRequest
    output: Path
    call: str  # create | remix | edits | extensions
    fields: dict[str, Any]
    upload: Path | None = None  # the photo (create) or clip (edits, extensions) sent with it
    parent_id: str | None = None  # the server's id of the clip a remix or extension starts from
    notices: tuple[str, ...] = field(default=())

    @property
    def seed(self) -> int:
        return self.fields["seed"]


class RemoteStudio:
    """The Studio's prepare/run, done by a server; one per server address."""

    def __init__(self, url: str, api_key: str | None, config: Config | None = None, *, client: Any = None):
        from sora_cli.engines.remote import RemoteClient

        self.url = url
        self.config = config or Config.load()
        self.client = client or RemoteClient(url, api_key)
        self._library = None

    @classmethod
    def connect(cls, url: str, config: Config | None = None, keyring_backend: Any = None) -> RemoteStudio:
        config = config or Config.load()
        return cls(url, api_key(url, config, keyring_backend), config)

    @property
    def library(self):
        from sora_cli.library import Library

        if self._library is None:
            self._library = Library(self.config.paths.library_db)
        return self._library

    def close(self) -> None:
        self.client.close()

    # -- prepare: everything that can be refused without the server ----------------------------------------

    def prepare(self, request: GenerateRequest) -> RemoteJob:
        from sora_cli.produce import output_path

        request.check()
        for name, flag in LOCAL_ONLY.items():
            value = getattr(request, name, None)
            if value not in (None, False):
                raise UsageError(f"{flag} works on local runs only; drop it or run without --server")
        if request.offload != "auto":
            raise UsageError("--offload works on local runs only; the server manages its own memory")
        if not request.visible_mark:
            raise UsageError("--no-visible-mark works on local runs only; the server always marks its videos")
        if not request.audio:
            raise UsageError("--no-audio works on local runs only")
        prompt = request.prompt
        for handle in request.cameos:  # the server's cameo book reads @handles in the prompt
            tag = "@" + handle.lstrip("@")
            if tag not in prompt.split():
                prompt = f"{prompt} {tag}".strip()
        fields: dict[str, Any] = {
            "prompt": prompt, "model": request.model, "size": request.size, "steps": request.steps,
            "negative_prompt": request.negative_prompt, "fps": request.fps, "guidance": request.guidance,
            # the seed is chosen here when not given, so the file name and the record know it
            "seed": request.seed if request.seed is not None else random_seed(),
            "seconds": f"{request.seconds:g}" if request.seconds is not None else None,
        }
        upload, parent_id, notices = None, None, ()
        command = request.command
        if command == "generate":
            call = "create"
        elif command == "animate-image":
            call, upload = "create", _readable(Path(request.image).expanduser())
            if request.fit != "crop":
                raise UsageError("--fit works on local runs only; the server crops the photo to the size")
        else:
            upload, parent_id = self._source(request.video)
            if command == "remix":
                fields["strength"] = request.strength
                call = "remix" if parent_id else "edits"
            else:
                call = "extensions"
                if request.seconds is None:
                    raise UsageError("extend with --server needs --seconds: how much to add")
            where = f"{self.url}'s {parent_id}" if parent_id else str(upload)
            notices = (f"{command} of {where}",)
        return RemoteJob(request=request, output=output_path(request, self.config, fields["seed"]), call=call,
                         fields={k: v for k, v in fields.items() if v is not None}, upload=upload,
                         parent_id=parent_id, notices=notices)

    def _source(self, ref: str) -> tuple[Path | None, str | None]:
        """(file to upload, None) or (None, the server's id): a video this server made is named, not sent."""
        from sora_cli.errors import InputError
        from sora_cli.sources import find_video

        if ref.startswith("feed:"):  # someone's published video on this server's feed
            return None, ref.removeprefix("feed:")
        try:
            path, video = find_video(ref, self.library)
        except InputError:
            if ref.startswith("video_") and "/" not in ref:
                return None, ref  # not ours: the server's own id
            raise
        origin = (video.parameters.get("remote") or {}) if video else {}
        if origin.get("server") == self.url and origin.get("id"):
            return None, origin["id"]
        return _readable(path), None

    # -- run -------------------------------------------------------------------------------------------------

    def submit(self, job: RemoteJob) -> dict:
        """Send the job; the server's Video object (queued) comes back."""
        fields = job.fields
        if job.call == "create":
            return self.client.create(fields["prompt"], file=job.upload, field="input_reference",
                                      **_without(fields, "prompt"))
        if job.call == "remix":
            return self.client.remix(job.parent_id, fields["prompt"], **_without(fields, "prompt"))
        path = f"/v1/videos/{job.call}"
        if job.upload is not None:
            return self.client.create(fields["prompt"], file=job.upload, field="video", path=path,
                                      **_without(fields, "prompt"))
        return self.client.post_json(path, {**fields, "video": {"id": job.parent_id}})

    def run(self, job: RemoteJob, report: Reporter = no_report) -> Video:
        started = time.monotonic()
        remote = self.submit(job)
        report(ProgressEvent("queued", message=f"{remote['id']} on {self.url}"))
        try:
            remote = self.wait(remote["id"], report)
        except KeyboardInterrupt:  # Ctrl-C stops the server's work too, not only the polling
            with contextlib.suppress(Exception):
                self.client.cancel(remote["id"])
            raise
        waited = time.monotonic() - started
        return self.fetch(remote, job, report, {"remote": round(waited, 3)})

    def wait(self, video_id: str, report: Reporter = no_report) -> dict:
        last: list[Any] = [None]

        def progress(video: dict) -> None:
            status, value = video.get("status"), int(video.get("progress") or 0)
            if (status, value) != last[0]:
                last[0] = (status, value)
                report(ProgressEvent(status or "remote", step=value, total=100))

        remote = self.client.poll(video_id, progress)
        if remote.get("status") != "completed":
            error = remote.get("error") or {}
            message = error.get("message") or f"the server says {remote.get('status')}"
            if error.get("code") == "moderation_blocked":
                raise PolicyRefusal(message)
            if error.get("code") == "cancelled" or remote.get("status") == "cancelled":
                raise Cancelled(f"{video_id} was cancelled on the server")
            raise SoraError(f"the server could not make {video_id}: {message}")
        return remote

    def fetch(self, remote: dict, job: RemoteJob, report: Reporter = no_report,
              timings: dict[str, float] | None = None) -> Video:
        """Download beside the final name, verify the C2PA manifest, rename, record in the library."""
        from sora_cli.media.atomic import atomic_path
        from sora_cli.media.encode import sha256_file
        from sora_cli.media.probe import probe
        from sora_cli.provenance.verify import verify_file

        report(ProgressEvent("download"))
        started = time.monotonic()
        with atomic_path(job.output) as tmp:
            self.client.download(remote["id"], tmp)
            verdict = verify_file(tmp)
            if not verdict.ok:  # the temp file goes; nothing is left under the final name
                raise ProvenanceInvalid(f"the video {remote['id']} from {self.url} failed the provenance check "
                                        f"({verdict.status}: {verdict.reason}); it was not kept")
        from sora_cli.library import watermark_key

        facts = probe(job.output, measure_audio=False)
        content_id = (verdict.soft_binding or {}).get("watermark_id")
        video = Video(
            id=remote["id"], prompt=remote.get("prompt") or job.fields["prompt"], model=remote.get("model") or "",
            status="completed", progress=100, created_at=remote.get("created_at") or int(time.time()),
            completed_at=remote.get("completed_at"), expires_at=remote.get("expires_at"),
            remixed_from_video_id=remote.get("remixed_from_video_id") or job.parent_id,
            seconds=str(remote.get("seconds") or ""), size=remote.get("size") or "", seed=job.seed,
            negative_prompt=job.fields.get("negative_prompt"), num_frames=facts.frames,
            fps=round(facts.fps) if facts.fps else None, path=str(job.output.resolve()),
            sha256=sha256_file(job.output), watermark_id=watermark_key(content_id) if content_id is not None else None,
            manifest_label=verdict.manifest_label,
            parameters={"remote": {"server": self.url, "id": remote["id"]}, "task": job.request.command,
                        "provenance": verdict.status, "request": _without(job.fields, "prompt")},
            timings={**(timings or {}), "download": round(time.monotonic() - started, 3)},
        )
        self.library.save(video)
        return video


def _without(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in names}


def _readable(path: Path) -> Path:
    from sora_cli.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


class RemoteCameos:
    """A server's cameo book over /v1/cameos: enrol with a liveness clip, share by audience, see uses, revoke."""

    def __init__(self, url: str, api_key: str, config: Config | None = None, *, client: Any = None):
        from sora_cli.engines.remote import RemoteClient

        self.url, self.config = url, config or Config.load()
        self.client = client or RemoteClient(url, api_key)

    @classmethod
    def connect(cls, url: str, config: Config | None = None) -> RemoteCameos:
        config = config or Config.load()
        return cls(url, api_key(url, config), config)

    def close(self) -> None:
        self.client.close()

    @property
    def _pending(self) -> Path:
        """Where the last challenge this server issued is remembered (its id, for `enroll`)."""
        import hashlib

        name = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        return self.config.paths.config_dir / "cameo-challenges" / f"{name}.json"

    def challenge(self) -> dict[str, Any]:
        from sora_cli.media.atomic import atomic_write_text

        issued = self.client.call("POST", "/v1/cameos/challenge")
        self._pending.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._pending, json.dumps({"id": issued["id"]}))
        return issued

    def enroll(self, video: Path, *, handle: str | None, name: str, audience: str, mirrored: bool,
               challenge_id: str | None = None) -> dict[str, Any]:
        if challenge_id is None:
            try:
                challenge_id = json.loads(self._pending.read_text(encoding="utf-8"))["id"]
            except (OSError, ValueError, KeyError):
                raise UsageError(f"no pending challenge from {self.url}: run `sora cameo challenge --server "
                                 f"{self.url}` first") from None
        fields = {"challenge_id": challenge_id, "name": name, "audience": audience, "mirrored": str(mirrored).lower(),
                  **({"handle": handle.lstrip("@")} if handle else {})}
        path = _readable(Path(video).expanduser())
        with open(path, "rb") as fh:
            record = self.client.call("POST", "/v1/cameos", data=fields,
                                      files={"video": (path.name, fh.read(), "video/mp4")})
        self._pending.unlink(missing_ok=True)
        return record

    def grant(self, handle: str, approve: list[str] = (), unapprove: list[str] = (),
              audience: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"approve": [u.lstrip("@") for u in approve],
                                "unapprove": [u.lstrip("@") for u in unapprove]}
        if audience is not None:
            body["audience"] = audience
        return self.client.call("POST", f"/v1/cameos/{handle.lstrip('@')}/grant", json=body)

    def list(self) -> list[dict[str, Any]]:
        return self.client.call("GET", "/v1/cameos").get("data", [])

    def show(self, handle: str) -> dict[str, Any]:
        return self.client.call("GET", f"/v1/cameos/{handle.lstrip('@')}")

    def uses(self, handle: str) -> list[dict[str, Any]]:
        return self.client.call("GET", f"/v1/cameos/{handle.lstrip('@')}/uses").get("data", [])

    def revoke(self, handle: str) -> dict[str, Any]:
        return self.client.call("DELETE", f"/v1/cameos/{handle.lstrip('@')}")
