"""Naming a model: a built-in name, an alias from the config, a local folder, or a hub id.

Resolution reads only `model_index.json`, so a request is validated against its family before any
weights load. The family comes from the pipeline's `_class_name`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sora_cli.config import Config
from sora_cli.errors import ModelError, UsageError
from sora_cli.families import BuiltinModel, Defaults, Family
from sora_cli.media.encode import sha256_file
from sora_cli.plugins import Registry

DEFAULT_MODEL = "tiny"
#: the built-in model a task uses when neither --model nor the `default_model` setting names one
TASK_DEFAULTS = {"t2v": "tiny", "v2v": "tiny", "i2v": "tiny-i2v", "extend": "tiny-i2v", "reference": "tiny-vace",
                 "audio": "tiny-av", "soundtrack": "tiny-audio"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MARKER = ".sora-built.json"
_FULL_HASH_LIMIT = 8 << 20  # files above this are fingerprinted by size, head and tail


@dataclass(frozen=True)
class ModelInfo:
    ref: str  # what the user named
    source: str  # builtin | path | hub
    location: str  # the folder or hub id given to from_pretrained
    class_name: str
    family: Family
    defaults: Defaults
    alias: str | None = None
    builtin: BuiltinModel | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.family.tasks_for(self.class_name)

    @property
    def is_builtin(self) -> bool:
        return self.builtin is not None


def resolve_model(ref: str | None, config: Config, registry: Registry) -> ModelInfo:
    ref = ref or config.get("default_model") or DEFAULT_MODEL
    alias = None
    target = ref
    if ref in config.models and ref not in registry.builtin_models:
        alias, target = ref, config.models[ref]
    if target in registry.builtin_models:
        builtin = registry.builtin_models[target]
        folder = ensure_builtin(builtin, config.paths.models_cache)
        return _info(ref, "builtin", str(folder), _read_index(folder), registry, alias, builtin)
    folder = Path(target).expanduser()
    if folder.exists() or target.startswith((".", "/", "~")) or target.count("/") > 1:
        if not folder.is_dir():
            raise ModelError(f"model folder {folder} does not exist" if not folder.exists()
                             else f"model path {folder} is a file, not a pipeline folder")
        return _info(ref, "path", str(folder.resolve()), _read_index(folder), registry, alias)
    if _HUB_ID.match(target):
        return _info(ref, "hub", target, _fetch_hub_index(target), registry, alias)
    known = sorted(set(registry.builtin_models) | set(config.models))
    raise ModelError(f"no model named {ref!r}: not a folder, an alias ({', '.join(known)}) or a hub id (owner/name)")


def default_model(task: str, config: Config) -> str:
    """`default_model` from the config for video tasks, else the built-in default for the task."""
    configured = config.get("default_model") if task != "soundtrack" else config.get("soundtrack_model")
    return str(configured or TASK_DEFAULTS.get(task, DEFAULT_MODEL))


def models_for(task: str, config: Config, registry: Registry) -> list[str]:
    """Names of the built-in models and aliases that can do `task` (aliases that fail to resolve are skipped)."""
    names = []
    for name in [*registry.builtin_models, *sorted(config.models)]:
        with contextlib.suppress(Exception):
            if task in peek_model(name, config, registry).tasks:
                names.append(name)
    return names


def check_task(model: ModelInfo, task: str, config: Config, registry: Registry) -> None:
    """A model asked for a task it cannot do: one line naming the models that can."""
    if task in model.tasks:
        return
    from sora_cli.families import TASKS

    able = models_for(task, config, registry)
    hint = f"; use --model {able[0]}" + (f" (or {', '.join(able[1:4])})" if len(able) > 1 else "") if able else ""
    does = ", ".join(model.tasks) or "nothing sora-cli supports"
    raise UsageError(f"{model.ref} ({model.class_name}) cannot do {TASKS.get(task, task)}: it does {does}{hint}")


def peek_model(ref: str, config: Config, registry: Registry) -> ModelInfo:
    """Like resolve_model, but a built-in model that says its pipeline class is not built."""
    builtin = registry.builtin_models.get(ref)
    if builtin is None or builtin.pipeline is None:
        return resolve_model(ref, config, registry)
    folder = builtin_folder(builtin, config.paths.models_cache)
    return _info(ref, "builtin", str(folder), {"_class_name": builtin.pipeline}, registry, None, builtin)


def _info(ref: str, source: str, location: str, index: dict, registry: Registry,
          alias: str | None, builtin: BuiltinModel | None = None) -> ModelInfo:
    class_name = index.get("_class_name")
    if not isinstance(class_name, str):
        raise ModelError(f"model {ref!r}: model_index.json has no _class_name")
    family = registry.family_for_class(class_name)
    defaults = builtin.defaults if builtin and builtin.defaults else family.defaults
    return ModelInfo(ref, source, location, class_name, family, defaults, alias, builtin)


def _read_index(folder: Path) -> dict:
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ModelError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model folder {folder} is damaged: model_index.json is not valid JSON ({exc})") from None
    if not isinstance(index, dict):
        raise ModelError(f"model folder {folder} is damaged: model_index.json is not an object")
    missing = [
        name for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and value[0] and not (folder / name).is_dir()
    ]
    if missing:
        raise ModelError(f"model folder {folder} is damaged: missing component folder(s) {', '.join(missing)}")
    return index


def _fetch_hub_index(hub_id: str) -> dict:
    """model_index.json from the local HF cache, else from the hub; fail fast and quietly with no network."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # its retry chatter is not ours to print
    with contextlib.suppress(Exception):
        return json.loads(Path(hf_hub_download(hub_id, "model_index.json", local_files_only=True)).read_text())
    advice = (f"on a machine with network run `hf download {hub_id} --local-dir DIR`, "
              f"then `sora models add NAME DIR`")
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    if constants.HF_HUB_OFFLINE:
        raise ModelError(f"cannot get {hub_id}: it is not in the local cache and HF_HUB_OFFLINE is set; {advice}")
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        raise ModelError(f"cannot get {hub_id}: {host} is unreachable (no network?); {advice}") from None
    try:
        path = hf_hub_download(hub_id, "model_index.json")
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"cannot get {hub_id} from {host} ({type(exc).__name__}: {reason[:160]}); {advice}") from None
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- built-in models ---------------------------------------------------------------------------

def builtin_folder(model: BuiltinModel, cache: Path) -> Path:
    return cache / f"{model.name}-v{model.version}"


def ensure_builtin(model: BuiltinModel, cache: Path) -> Path:
    """Build the model once into the cache; rebuild it if any file is missing or changed."""
    folder = builtin_folder(model, cache)
    if _marker_ok(folder):
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache))
    try:
        model.build(staging)
        hashes = {rel: sha256_file(staging / rel) for rel in _files(staging)}
        (staging / _MARKER).write_text(json.dumps(hashes, sort_keys=True, indent=1))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            if not _marker_ok(folder):  # another process did not win the race either
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _marker_ok(folder: Path) -> bool:
    try:
        recorded = json.loads((folder / _MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    present = set(_files(folder))
    return present == set(recorded) and all(sha256_file(folder / rel) == h for rel, h in recorded.items())


def _files(folder: Path) -> list[str]:
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != _MARKER
    )



def model_fingerprint(folder: Path) -> str:
    """sha256 over every file's path and bytes; files over 8 MiB contribute size, head and tail.

    Multi-GB checkpoints would take tens of seconds to hash whole; head and tail include the
    safetensors header (names, shapes, offsets), which changes with any re-save.
    """
    digest = hashlib.sha256()
    for rel in _files(folder):
        path = folder / rel
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with open(path, "rb") as fh:
            if size <= _FULL_HASH_LIMIT:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read())
    return "sha256:" + digest.hexdigest()


def local_folder(info: ModelInfo) -> Path | None:
    """The folder on disk for a model, when there is one (a hub id may already be cached)."""
    if info.source != "hub":
        return Path(info.location)
    with contextlib.suppress(Exception):
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(info.location, local_files_only=True))
    return None


def add_alias(config: Config, name: str, target: str, registry: Registry) -> ModelInfo:
    if name in registry.builtin_models:
        raise UsageError(f"{name!r} is a built-in model name; pick another alias")
    if not re.match(r"^[\w.-]+$", name):
        raise UsageError(f"alias {name!r} may use letters, digits, '.', '_' and '-' only")
    folder = Path(target).expanduser()
    stored = str(folder.resolve()) if folder.exists() else target
    info = resolve_model(stored, config, registry)  # validates before saving
    config.models[name] = stored
    config.save()
    return info
