"""Plugins: one versioned entry-point group, `sora_cli.plugins.v1`.

An entry point names a module (or object) with `register(registry: Registry) -> None`.
The built-in families are registered through this same door (see pyproject.toml). A plugin that
fails to import or register becomes a warning in `registry.warnings`, never a crash.
Registries are built per call: there is no module-level state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from sora_cli.errors import ModelError
from sora_cli.families import BuiltinModel, Family

ENTRY_POINT_GROUP = "sora_cli.plugins.v1"
API_VERSION = 1

EngineFactory = Callable[..., Any]


@dataclass
class Registry:
    families: dict[str, Family] = field(default_factory=dict)
    builtin_models: dict[str, BuiltinModel] = field(default_factory=dict)
    engines: dict[str, EngineFactory] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    api_version: int = API_VERSION

    def add_family(self, family: Family) -> None:
        self.families[family.name] = family

    def add_builtin_model(self, model: BuiltinModel) -> None:
        self.builtin_models[model.name] = model

    def add_engine(self, name: str, factory: EngineFactory) -> None:
        self.engines[name] = factory

    def family_for_class(self, class_name: str) -> Family:
        for family in self.families.values():
            if class_name in family.pipelines:
                return family
        known = ", ".join(f.label for f in self.families.values())
        raise ModelError(f"pipeline class {class_name!r} is not supported; supported families: {known}")


def load_registry(eps: Iterable[EntryPoint] | None = None) -> Registry:
    registry = Registry()
    if eps is None:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    # the built-ins first, so a plugin may deliberately override a family
    for ep in sorted(eps, key=lambda e: (e.name != "builtin", e.name)):
        try:
            target = ep.load()
            register = getattr(target, "register", target)
            register(registry)
        except Exception as exc:  # a broken plugin is a warning, not a crash
            registry.warnings.append(f"plugin {ep.name!r} failed to load: {type(exc).__name__}: {exc}")
            continue
        registry.plugins.append(ep.name)
    return registry
