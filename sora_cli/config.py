"""User directories and the one TOML config file, read once into a Config object.

`SORA_HOME` puts every user directory under one folder (tests set it to a temp dir);
otherwise platformdirs picks the platform's config, data and cache folders.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.errors import UsageError

APP_NAME = "sora-cli"

# Keys `sora config set` accepts, with the type their value is parsed as.
KNOWN_KEYS: dict[str, type] = {
    "default_model": str,
    "soundtrack_model": str,
    "output_dir": str,
    "device": str,
    "offload": str,
    "seconds": float,
    "fps": int,
    "steps": int,
    "handle": str,
    "server": str,  # remote mode: a `sora serve` address (--server and $SORA_SERVER win)
}


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = env.get("SORA_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(root / "config", root / "data", root / "cache")
        import platformdirs

        return cls(
            Path(platformdirs.user_config_dir(APP_NAME)),
            Path(platformdirs.user_data_dir(APP_NAME)),
            Path(platformdirs.user_cache_dir(APP_NAME)),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def library_db(self) -> Path:
        return self.data_dir / "library.db"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def models_cache(self) -> Path:
        return self.cache_dir / "models"


@dataclass
class Config:
    paths: Paths
    values: dict[str, Any] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # alias -> path or hub id

    @classmethod
    def load(cls, paths: Paths | None = None) -> Config:
        paths = paths or Paths.from_env()
        data: dict[str, Any] = {}
        if paths.config_file.exists():
            try:
                data = tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"config file {paths.config_file} is not valid TOML: {exc}") from None
        models = data.pop("models", {})
        if not isinstance(models, dict):
            raise UsageError(f"config file {paths.config_file}: [models] must be a table")
        return cls(paths=paths, values=data, models={str(k): str(v) for k, v in models.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, raw: str) -> Any:
        if key not in KNOWN_KEYS:
            raise UsageError(f"unknown config key {key!r}; known keys: {', '.join(sorted(KNOWN_KEYS))}")
        kind = KNOWN_KEYS[key]
        try:
            value = kind(raw)
        except ValueError:
            raise UsageError(f"config key {key!r} needs a {kind.__name__}, got {raw!r}") from None
        self.values[key] = value
        return value

    def unset(self, key: str) -> None:
        self.values.pop(key, None)

    def save(self) -> None:
        from sora_cli.media.atomic import atomic_write_text

        self.paths.config_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.paths.config_file, dump_toml(self.values, {"models": self.models}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def dump_toml(values: dict[str, Any], tables: dict[str, dict[str, Any]]) -> str:
    """Write flat keys and one level of tables: all our config needs."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(values.items())]
    for name, table in tables.items():
        if table:
            lines += ["", f"[{name}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(table.items())]
    return "\n".join(lines) + "\n"
