"""The moderation policy: the shipped default TOML with an admin file laid over it.

The admin file is the one `SORA_POLICY` names, else the config folder's `policy.toml` when it exists. In it a
scalar or a list replaces ours, a list written as `{ add = [...], remove = [...] }` edits ours, and a new table
is added. Only the admin file can override a refusal: `action = "allow"` on a category, or `[[overrides]]`
entries scoped to users and sources. The `minors_sexual` category is locked: it always refuses, nothing can
override it, its rules, examples and the term sets they use may only grow, its thresholds may only fall, and it
ignores the admin's additions to the global `unless` list. A file that tries anything else is a UsageError.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.errors import UsageError

LOCKED = "minors_sexual"  # no override, no weakening: enforced here, whatever the files say
ACTIONS = ("refuse", "allow")
_LIST_KEYS = ("patterns", "grey_patterns", "grey_terms", "unless", "examples", "anchors", "all_of", "near", "escalate")
_NUMBERS = {"threshold": 0.6, "margin": 0.05, "grey": 0.5, "grey_margin": 0.0}


@dataclass(frozen=True)
class Near:
    first: str
    then: str
    within: int = 4
    either_order: bool = False


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    action: str
    threshold: float
    margin: float
    grey: float
    grey_margin: float
    patterns: tuple[str, ...] = ()
    all_of: tuple[tuple[str, ...], ...] = ()
    near: tuple[Near, ...] = ()
    grey_patterns: tuple[str, ...] = ()
    grey_terms: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()
    escalate: tuple[tuple[str, str], ...] = ()  # (model category, term set): that model hit plus a term -> this one
    model_requires: str | None = None  # a term set the prompt must match for this category's model layer to count


@dataclass(frozen=True)
class Override:
    """An admin's exception: `category` is not refused for these users / sources (empty = all)."""

    category: str
    users: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    reason: str = ""

    def applies(self, user: str | None, source: str) -> bool:
        return (not self.users or user in self.users) and (not self.sources or source in self.sources)


@dataclass(frozen=True)
class Character:
    name: str
    holder: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    files: tuple[str, ...]
    categories: dict[str, Category]  # in priority order
    terms: dict[str, tuple[str, ...]]
    unless: tuple[str, ...]
    locked_unless: tuple[str, ...]  # the shipped global `unless`, the only one the locked category sees
    negated: tuple[str, ...]  # the shipped `negated` phrases ("no gore"): out of every layer's reading; fixed
    anchors: tuple[str, ...]
    characters: tuple[Character, ...]
    overrides: tuple[Override, ...]
    log_prompts: bool
    nudity_classes: tuple[str, ...]
    nudity_threshold: float
    frame_sample: int | None  # a fixed count, or None: frame_rate per second within frame_min..frame_max
    frame_rate: float
    frame_min: int
    frame_max: int
    face_tolerance: float
    digest: str

    def override_for(self, category: str, user: str | None, source: str) -> Override | None:
        """The admin override that lets `category` through for this requester, if any (never for LOCKED)."""
        if category == LOCKED:
            return None
        cat = self.categories.get(category)
        if cat is not None and cat.action == "allow":
            return Override(category, reason="action = allow in the admin policy")
        return next((o for o in self.overrides if o.category == category and o.applies(user, source)), None)

    def describe(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "digest": self.digest,
            "log_prompts": self.log_prompts,
            "categories": [
                {"name": c.name, "label": c.label, "action": c.action, "locked": c.name == LOCKED,
                 "rules": len(c.patterns) + len(c.all_of) + len(c.near), "grey_rules": len(c.grey_patterns)
                 + len(c.grey_terms), "examples": len(c.examples), "anchors": len(c.anchors),
                 "threshold": c.threshold, "margin": c.margin, "grey": c.grey}
                for c in self.categories.values()
            ],
            "overrides": [vars(o) | {"users": list(o.users), "sources": list(o.sources)} for o in self.overrides],
            "characters": len(self.characters),
            "global_anchors": len(self.anchors),
            "frames": {"sample": self.frame_sample, "per_second": self.frame_rate, "min": self.frame_min,
                       "max": self.frame_max, "nudity_threshold": self.nudity_threshold,
                       "nudity_classes": list(self.nudity_classes), "face_tolerance": self.face_tolerance},
        }


def default_policy_path() -> Path:
    return Path(str(resources.files("sora_cli.safety") / "default_policy.toml"))


def config_file(paths: Paths, variable: str, name: str, environ: dict[str, str] | None = None) -> Path | None:
    """The file an environment variable names (it must exist), else `name` in the config folder if it is there."""
    env = os.environ if environ is None else environ
    named = env.get(variable)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise UsageError(f"{variable} names {path}, which is not a file")
        return path
    path = paths.config_dir / name
    return path if path.is_file() else None


def admin_policy_path(paths: Paths, environ: dict[str, str] | None = None) -> Path | None:
    return config_file(paths, "SORA_POLICY", "policy.toml", environ)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{what} {path} cannot be read: {exc}") from None


def load_policy(paths: Paths | None = None, environ: dict[str, str] | None = None) -> Policy:
    """The active policy: the shipped default, with the admin file (if any) laid over it."""
    default_path = default_policy_path()
    admin_path = admin_policy_path(paths or Paths.from_env(environ), environ)
    admin = read_toml(admin_path, "policy file") if admin_path else None
    return build_policy(read_toml(default_path, "policy file"), admin,
                        files=(str(default_path), *([str(admin_path)] if admin_path else [])))


def build_policy(default: dict[str, Any], admin: dict[str, Any] | None = None, *,
                 files: tuple[str, ...] = ("<default>",)) -> Policy:
    where = files[-1]
    if default.get("overrides"):
        raise UsageError(f"policy file {files[0]}: overrides belong in the admin policy only")
    if admin and "negated" in admin:  # it reaches the locked category too, so only the shipped file sets it
        raise UsageError(f"policy file {where}: negated is fixed by the shipped policy; use unless")
    merged = _merge(default, admin or {}, where)
    policy = _parse(merged, default, files)
    if admin:
        _check_locked(policy, _parse(default, default, files[:1]), where)
    return policy


def _merge(base: Any, over: Any, where: str, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v, where, f"{key}.{k}".strip(".")) if k in base else _merge(None, v, where, k)
        return out
    if isinstance(over, dict) and set(over) <= {"add", "remove"}:
        items = list(base or [])
        items = [x for x in items if x not in over.get("remove", [])]
        return items + [x for x in over.get("add", []) if x not in items]
    return over


def _strs(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"policy file {where}: {key} must be a list of strings")
    return tuple(value)


def _regexes(values: tuple[str, ...], where: str, key: str, shipped: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Each pattern compiles; the shipped file's own (`shipped`) are not compiled twice: the rules compile them, and the
    test suite builds them (compiling every shipped pattern twice cost ~0.15 s before every generation)."""
    for value in values:
        if value in shipped:
            continue
        try:
            re.compile(value)
        except re.error as exc:
            raise UsageError(f"policy file {where}: {key}: bad pattern {value!r}: {exc}") from None
    return values


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed TOML document (nested tables and lists included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _parse(data: dict[str, Any], default: dict[str, Any], files: tuple[str, ...]) -> Policy:
    where = files[-1]
    shipped = frozenset(_strings(default))
    terms = {name: _regexes(_strs(v, where, f"terms.{name}"), where, f"terms.{name}", shipped)
             for name, v in (data.get("terms") or {}).items()}
    categories: dict[str, Category] = {}
    for name, raw in (data.get("categories") or {}).items():
        categories[name] = _category(name, raw, terms, where, shipped)
    characters = tuple(
        Character(name, str(v.get("holder", "")), _regexes(_strs(v.get("aliases", [name.lower()]), where,
                                                                  f"characters.{name}"), where, name, shipped))
        for name, v in (data.get("characters") or {}).items()
    )
    overrides = []
    for i, raw in enumerate(data.get("overrides") or [], 1):
        category = str(raw.get("category", ""))
        if category == LOCKED:
            raise UsageError(f"policy file {where}: overrides #{i}: {LOCKED} can never be overridden")
        if category not in categories:
            raise UsageError(f"policy file {where}: overrides #{i}: unknown category {category!r}")
        overrides.append(Override(category, _strs(raw.get("users"), where, "users"),
                                  _strs(raw.get("sources"), where, "sources"), str(raw.get("reason", ""))))
    frames, faces = data.get("frames") or {}, data.get("faces") or {}
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return Policy(
        files=files, categories=categories, terms=terms,
        unless=_regexes(_strs(data.get("unless"), where, "unless"), where, "unless", shipped),
        locked_unless=_strs(default.get("unless"), files[0], "unless"),
        negated=_strs(default.get("negated"), files[0], "negated"),
        anchors=_strs((data.get("anchors") or {}).get("benign"), where, "anchors.benign"),
        characters=characters, overrides=tuple(overrides), log_prompts=bool(data.get("log_prompts", False)),
        nudity_classes=_strs(frames.get("nudity_classes"), where, "frames.nudity_classes"),
        nudity_threshold=float(frames.get("nudity_threshold", 0.5)),
        frame_sample=int(frames["sample"]) if "sample" in frames else None,
        frame_rate=float(frames.get("per_second", 2)), frame_min=int(frames.get("min", 4)),
        frame_max=int(frames.get("max", 16)),
        face_tolerance=float(faces.get("tolerance", 0.6)), digest=hashlib.sha256(canonical).hexdigest()[:16],
    )


def _category(name: str, raw: dict[str, Any], terms: dict[str, tuple[str, ...]], where: str,
              shipped: frozenset[str]) -> Category:
    key = f"categories.{name}"
    action = raw.get("action", "refuse")
    if action not in ACTIONS:
        raise UsageError(f"policy file {where}: {key}.action must be one of {', '.join(ACTIONS)}")
    if name == LOCKED and action != "refuse":
        raise UsageError(f"policy file {where}: {LOCKED} always refuses; it cannot be overridden")

    def known(term: str) -> str:
        if term not in terms:
            raise UsageError(f"policy file {where}: {key} uses the term set {term!r}, which [terms] lacks")
        return term

    numbers = {}
    for field, fallback in _NUMBERS.items():
        value = raw.get(field, fallback)
        low = -1 if field.endswith("margin") else 0  # a margin may be negative: the anchor may lead by that much
        if not isinstance(value, int | float) or not low <= value <= 1:
            raise UsageError(f"policy file {where}: {key}.{field} must be a number from {low} to 1")
        numbers[field] = float(value)
    near = tuple(Near(known(n["first"]), known(n["then"]), int(n.get("within", 4)), bool(n.get("either_order")))
                 for n in raw.get("near", []))
    return Category(
        name=name, label=str(raw.get("label", name.replace("_", " "))), action=action, **numbers,
        patterns=_regexes(_strs(raw.get("patterns"), where, f"{key}.patterns"), where, key, shipped),
        all_of=tuple(tuple(known(t) for t in group) for group in raw.get("all_of", [])), near=near,
        grey_patterns=_regexes(_strs(raw.get("grey_patterns"), where, f"{key}.grey_patterns"), where, key, shipped),
        grey_terms=tuple(known(t) for t in _strs(raw.get("grey_terms"), where, f"{key}.grey_terms")),
        unless=_regexes(_strs(raw.get("unless"), where, f"{key}.unless"), where, key, shipped),
        examples=_strs(raw.get("examples"), where, f"{key}.examples"),
        anchors=_strs(raw.get("anchors"), where, f"{key}.anchors"),
        escalate=tuple((str(e["category"]), known(str(e["terms"]))) for e in raw.get("escalate", [])),
        model_requires=known(str(raw["model_requires"])) if raw.get("model_requires") else None,
    )


def _check_locked(policy: Policy, shipped: Policy, where: str) -> None:
    """The admin file may make the locked category stricter, never weaker."""
    new, old = policy.categories.get(LOCKED), shipped.categories.get(LOCKED)
    if old is None:
        return
    problem = None
    if new is None:
        problem = "it cannot be removed"
    else:
        for field in ("patterns", "all_of", "near", "examples", "escalate"):
            if not set(getattr(old, field)) <= set(getattr(new, field)):
                problem = f"its {field} may only grow"
        if set(new.unless) != set(old.unless) or set(new.anchors) != set(old.anchors):
            problem = "its unless and anchors lists cannot change"
        if new.model_requires != old.model_requires:
            problem = "its model_requires cannot change"
        for field in _NUMBERS:
            if getattr(new, field) > getattr(old, field):
                problem = f"its {field} may only fall"
        used = {t for group in old.all_of for t in group} | {t for e in old.escalate for t in e[1:]} | {
            t for n in old.near for t in (n.first, n.then)} | ({old.model_requires} if old.model_requires else set())
        # the harm lexicons its model layer's refusals need: its own and those of the categories it escalates from
        used |= {f"harm_{name}" for name in (LOCKED, *(e[0] for e in old.escalate))} & set(shipped.terms)
        for term in used:
            if not set(shipped.terms[term]) <= set(policy.terms.get(term, ())):
                problem = f"the term set {term!r} it uses may only grow"
    if problem:
        raise UsageError(f"policy file {where}: {LOCKED} cannot be weakened: {problem}")
