"""Verify a file's C2PA manifest and say what it means: a `Verdict`, never a traceback.

Statuses (`Verdict.status`, for the file itself):
    trusted           content intact, signer chains to a trust anchor the caller passed
    intact_untrusted  content intact, signature valid, signer not among the trust anchors
    intact_expired    content intact, but the certificate has expired or the timestamp is untrusted: a real clip
                      signed with a short-lived certificate is not "forged"
    altered           the content or the manifest changed after signing (`failures` says what, in plain words)
    no_manifest       no C2PA data: never signed, or stripped by a re-encode, trim or remux
    unreadable        empty, truncated, not a video, a folder, corrupt (`reason` says which)

c2pa reports a remix of a tampered parent as Trusted at the top: the parent's damage is only in the `parentOf`
ingredient's own stored `validation_results` (recorded when it was ingested) plus the read-time
`ingredientDeltas`. So the ingredients are walked recursively into `Verdict.ingredients`, and `tree_status` is
the worst status over the file and every ingredient that carries a manifest.

`Verdict.to_dict()` — stable JSON schema "sora-cli.verdict/1":
    {"schema": "sora-cli.verdict/1", "path": str|null, "title": str|null, "relationship": str|null,
     "status": <status>, "tree_status": <status>, "ok": bool,   # ok: content intact here and in every signed
     "reason": str, "validation_state": "Trusted"|"Valid"|"Invalid"|null,   #     ingredient (trust aside)
     "manifest_label": str|null,
     "failures": [{"code": str, "explanation": str, "detail": str|null, "where": str|null}],
     "signer": {"common_name": str|null, "organization": str|null, "algorithm": str|null, "serial": str|null}|null,
     "signed_time": str|null,            # only from a trusted timestamp authority; we sign without one
     "claim_generator": str|null, "model": str|null,
     "creation_action": {"action": str, "digitalSourceType": str|null, "softwareAgent": ...}|null,
     "generation": {...org.sora-cli.generation data...}|null,
     "soft_binding": {"alg": str|null, "value": str|null, "watermark_id": int|null}|null,
     "ingredients": [<verdict>, ...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sora_cli.errors import UsageError
from sora_cli.provenance.bmff import stat_problem, structure_problem
from sora_cli.provenance.sign import GENERATION_LABEL
from sora_cli.provenance.trust import EXPIRY_CODES, TRUST_CODES, load_anchors, make_context, plain_words

SCHEMA = "sora-cli.verdict/1"
STATUSES = ("trusted", "intact_untrusted", "intact_expired", "altered", "no_manifest", "unreadable")
_SEVERITY = {"trusted": 0, "intact_untrusted": 1, "intact_expired": 2, "no_manifest": 3, "unreadable": 4,
             "altered": 5}
_MAX_DEPTH = 32
_SUCCESS_SUFFIXES = (".match", ".validated", ".trusted", ".insideValidity", ".skipped", ".notRevoked")


@dataclass(frozen=True)
class Failure:
    """One failed check: c2pa's code, our plain words, c2pa's own explanation, and where (an assertion label)."""

    code: str
    explanation: str
    detail: str | None = None
    where: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What a file (or one of its ingredients) proves about itself."""

    status: str
    reason: str
    path: str | None = None
    title: str | None = None
    relationship: str | None = None
    validation_state: str | None = None
    manifest_label: str | None = None
    failures: tuple[Failure, ...] = ()
    signer: dict[str, Any] | None = None
    signed_time: str | None = None
    claim_generator: str | None = None
    model: str | None = None
    creation_action: dict[str, Any] | None = None
    generation: dict[str, Any] | None = None
    soft_binding: dict[str, Any] | None = None
    ingredients: tuple[Verdict, ...] = field(default=())

    @property
    def tree_status(self) -> str:
        """The worst status of this file and of every ingredient that carries a manifest."""
        worst = self.status
        for child in self.ingredients:
            status = child.tree_status if child.status != "no_manifest" else child.status
            if status != "no_manifest" and _SEVERITY[status] > _SEVERITY[worst]:
                worst = status
        return worst

    @property
    def ok(self) -> bool:
        """Content intact here and in every signed ingredient (trust aside)."""
        return self.tree_status in ("trusted", "intact_untrusted", "intact_expired")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "path": self.path, "title": self.title, "relationship": self.relationship,
            "status": self.status, "tree_status": self.tree_status, "ok": self.ok, "reason": self.reason,
            "validation_state": self.validation_state, "manifest_label": self.manifest_label,
            "failures": [vars(f).copy() for f in self.failures], "signer": self.signer,
            "signed_time": self.signed_time, "claim_generator": self.claim_generator, "model": self.model,
            "creation_action": self.creation_action, "generation": self.generation,
            "soft_binding": self.soft_binding, "ingredients": [child.to_dict() for child in self.ingredients],
        }


def _classify(failures: list[Failure], success: set[str]) -> str:
    codes = {f.code for f in failures}
    if codes - TRUST_CODES:
        return "altered"
    if codes & EXPIRY_CODES:
        return "intact_expired"
    if not codes and "signingCredential.trusted" in success:
        return "trusted"
    return "intact_untrusted"


def _failures(items: Iterable[dict[str, Any]]) -> list[Failure]:
    seen, out = set(), []
    for item in items:
        code = str(item.get("code", "general.error"))
        url = item.get("url")
        if (code, url) in seen:
            continue
        seen.add((code, url))
        where = url.rsplit("/", 1)[-1] if isinstance(url, str) else None
        out.append(Failure(code, plain_words(code, item.get("explanation")), item.get("explanation"), where))
    return out


def _dict(value: Any) -> dict[str, Any]:
    """`value` if it is a dict, else {}: other tools may shape a field differently, that is no crash."""
    return value if isinstance(value, dict) else {}


def _assertion(manifest: dict[str, Any], *labels: str) -> Any:
    for assertion in manifest.get("assertions") or ():
        label = str(_dict(assertion).get("label", ""))
        if any(label == want or label.startswith(want + ".v") for want in labels):
            return assertion.get("data")
    return None


def _soft_binding(manifest: dict[str, Any]) -> dict[str, Any] | None:
    data = _assertion(manifest, "c2pa.soft-binding")
    if not isinstance(data, dict):
        return None
    blocks = data.get("blocks") if isinstance(data.get("blocks"), list) else []
    value = _dict(blocks[0] if blocks else None).get("value")
    watermark_id = None
    try:
        import base64

        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        watermark_id = int.from_bytes(raw, "big") if len(raw) == 8 else None
    except ValueError:
        pass
    return {"alg": data.get("alg"), "value": value, "watermark_id": watermark_id}


def _reason(status: str, failures: list[Failure], signer: dict[str, Any] | None) -> str:
    signer = signer or {}
    who = signer.get("common_name") or "an unknown signer"
    if signer.get("organization"):
        who += f" ({signer['organization']})"
    words = "; ".join(dict.fromkeys(f.explanation for f in failures))
    damage = "; ".join(dict.fromkeys(f.explanation for f in failures if f.code not in TRUST_CODES))
    return {
        "trusted": f"content intact, signed by {who}, who is trusted",
        "intact_untrusted": f"content intact, signed by {who}, who is not among the trust anchors"
                            + (f" ({words})" if words and words != plain_words("signingCredential.untrusted")
                               else ""),
        "intact_expired": f"content intact, signed by {who}, but {words}",
        "altered": damage or "the manifest does not validate",
    }[status]


def _node(manifests: dict[str, Any], label: str, failures: list[Failure], success: set[str],
          deltas: dict[str, dict[str, Any]], depth: int, **extra: Any) -> Verdict:
    manifest = manifests.get(label) or {}
    status = _classify(failures, success)
    info = manifest.get("signature_info") or {}
    signer = {"common_name": info.get("common_name"), "organization": info.get("issuer"),
              "algorithm": info.get("alg"), "serial": info.get("cert_serial_number")} if info else None
    generators = manifest.get("claim_generator_info")
    generator = _dict(generators[0] if isinstance(generators, list) and generators else generators)
    claim_generator = manifest.get("claim_generator") or (
        f"{generator.get('name')}/{generator.get('version')}" if generator.get("name") else None)
    actions = [a for a in _dict(_assertion(manifest, "c2pa.actions")).get("actions") or () if isinstance(a, dict)]
    first = actions[0] if actions else {}
    creation = {k: first.get(k) for k in ("action", "digitalSourceType", "softwareAgent")} if first else None
    generation = _assertion(manifest, GENERATION_LABEL)
    model = _dict(_dict(generation).get("model")).get("id")
    if model is None:
        agents = [a["softwareAgent"] for a in actions if a.get("softwareAgent")]
        model = (_dict(agents[0]).get("name") or str(agents[0])) if agents else None
    children = []
    if depth < _MAX_DEPTH:
        children = [_ingredient(manifests, label, ing, deltas, depth + 1)
                    for ing in manifest.get("ingredients") or () if isinstance(ing, dict)]
    return Verdict(status=status, reason=_reason(status, failures, signer), manifest_label=label,
                   failures=tuple(failures), signer=signer, signed_time=info.get("time"),
                   claim_generator=claim_generator, model=model, creation_action=creation,
                   generation=generation if isinstance(generation, dict) else None,
                   soft_binding=_soft_binding(manifest), ingredients=tuple(children), **extra)


def _ingredient(manifests: dict[str, Any], owner: str, ing: dict[str, Any], deltas: dict[str, dict[str, Any]],
                depth: int) -> Verdict:
    extra: dict[str, Any] = {"title": ing.get("title"), "relationship": ing.get("relationship")}
    label = ing.get("active_manifest")
    if not label:
        return Verdict(status="no_manifest", reason="this ingredient carried no C2PA manifest", **extra)
    stored = (ing.get("validation_results") or {}).get("activeManifest") or {}
    stored_failures = list(stored.get("failure") or ()) + list(ing.get("validation_status") or ())
    delta = deltas.get(f"self#jumbf=/c2pa/{owner}/c2pa.assertions/{ing.get('label')}", {})
    delta_success = {str(s.get("code")) for s in delta.get("success") or ()}
    delta_failures = list(delta.get("failure") or ())
    # Trust is judged now, by the reader's anchors; stored results only say what the signer's machine trusted.
    trusted_now = "signingCredential.trusted" in delta_success or (
        "signingCredential.trusted" in {str(s.get("code")) for s in stored.get("success") or ()}
        and not any(f.get("code") == "signingCredential.untrusted" for f in delta_failures))
    kept = [f for f in stored_failures if not (trusted_now and f.get("code") == "signingCredential.untrusted")]
    success = {"signingCredential.trusted"} if trusted_now else set()
    return _node(manifests, label, _failures(kept + delta_failures), success, deltas, depth,
                 validation_state=None, **extra)


def verdict_from_store(store: dict[str, Any], path: str | None = None) -> Verdict:
    """A Verdict from a c2pa Reader's manifest-store JSON (already parsed)."""
    manifests = store.get("manifests") or {}
    label = store.get("active_manifest")
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    # A manifest c2pa cannot decode comes back as {"manifests": {}, "validation_status": [...]} (the v1 shape).
    legacy = [s for s in store.get("validation_status") or () if isinstance(s, dict)
              and not str(s.get("code", "")).endswith(_SUCCESS_SUFFIXES)]
    failures = _failures(list(active.get("failure") or ()) + legacy)
    if not label or label not in manifests:
        if failures:
            status = "altered" if _classify(failures, set()) == "altered" else "unreadable"
            return Verdict(status=status, reason=_reason("altered", failures, None), path=path,
                           manifest_label=label, failures=tuple(failures),
                           validation_state=store.get("validation_state") or "Invalid")
        return Verdict(status="no_manifest", reason="the manifest store has no active manifest", path=path)
    deltas = {str(d.get("ingredientAssertionURI")): d.get("validationDeltas") or {}
              for d in results.get("ingredientDeltas") or () if isinstance(d, dict)}
    # Our own claim's checks of its ingredients (their manifests' hashes) fail in the deltas: they are ours.
    failures += [f for d in deltas.values() for f in _failures(d.get("failure") or ())
                 if f.code.startswith("ingredient.")]
    success = {str(s.get("code")) for s in active.get("success") or ()}
    return _node(manifests, label, failures, success, deltas, 0, path=path,
                 validation_state=store.get("validation_state"))


def _c2pa_reason(exc: Exception) -> str:
    """Plain words for a C2paError raised while reading (c2pa's own first line kept in brackets)."""
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    kind = type(exc).__name__.removeprefix("_C2pa")
    if kind in ("Decoding", "Verify", "Signature", "AssertionNotFound", "Assertion", "Json", "Manifest"):
        return f"its C2PA manifest is damaged and cannot be checked (c2pa: {detail})"
    if kind == "Io":
        return f"c2pa could not read it; the file is damaged or cut short (c2pa: {detail})"
    if "could not be parsed" in detail:
        return f"the video container is damaged (c2pa: {detail})"
    return f"c2pa cannot read it (c2pa: {detail})"


def _unreadable(path: str, reason: str) -> Verdict:
    return Verdict(status="unreadable", reason=reason, path=path)


class Verifier:
    """One reading context (trust anchors parsed once) for many files; safe to share between threads."""

    def __init__(self, trust_anchors_pem: bytes | str | None = None) -> None:
        self.anchors = load_anchors(trust_anchors_pem)
        self._context = None

    def _ctx(self) -> Any:
        if self._context is None:
            self._context = make_context(self.anchors)
        return self._context

    def verify(self, path: str | os.PathLike[str]) -> Verdict:
        """Verify one file; every failure becomes a Verdict (no exception for bad input)."""
        name = str(path)
        problem = stat_problem(Path(path))
        if problem:
            return _unreadable(name, problem)
        verdict = self._read(name)
        if verdict.status in ("altered", "unreadable", "no_manifest"):
            # Only now look at the boxes (free on the happy path): a truncated clip reads "altered" in c2pa and an
            # empty or text one as an I/O or parse error; the box walk says which, in plain words.
            problem = structure_problem(Path(path))
            if problem:  # c2pa's codes and whatever it could read stay in the verdict
                return replace(verdict, status="unreadable", reason=problem)
        return verdict

    def _read(self, name: str) -> Verdict:
        import c2pa

        try:
            # c2pa opens the file and streams it through Python read/seek callbacks: never read into memory here.
            with c2pa.Reader(name, context=self._ctx()) as reader:
                text = reader.json()
        except c2pa.C2paError.ManifestNotFound:
            return Verdict(status="no_manifest", path=name,
                           reason="no C2PA manifest: never signed, or stripped by a re-encode, trim or remux")
        except c2pa.C2paError as exc:
            return _unreadable(name, _c2pa_reason(exc))
        except OSError as exc:
            return _unreadable(name, f"cannot read it: {exc.strerror or type(exc).__name__}")
        try:
            return verdict_from_store(json.loads(text), name)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            return _unreadable(name, f"the manifest store could not be interpreted ({type(exc).__name__})")

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None


def verify_file(path: str | os.PathLike[str], trust_anchors_pem: bytes | str | None = None) -> Verdict:
    """Verify one file against the given trust anchors (a PEM bundle; None trusts nobody)."""
    verifier = Verifier(trust_anchors_pem)
    try:
        return verifier.verify(path)
    finally:
        verifier.close()


def _verify_chunk(job: tuple[str | None, list[str]]) -> list[Verdict]:
    """Worker-process side of verify_many: contexts cannot cross a fork, so each chunk builds its own."""
    anchors, chunk = job
    verifier = Verifier(anchors)
    try:
        return [verifier.verify(p) for p in chunk]
    finally:
        verifier.close()


def verify_many(paths: Iterable[str | os.PathLike[str]], jobs: int = 1, trust_anchors_pem: bytes | str | None = None,
                mode: str = "threads") -> list[Verdict]:
    """Verify files, verdicts in input order; jobs > 1 verifies in parallel with threads (default) or processes.

    c2pa's native work runs without the GIL but calls back into Python ~500 times per small file to read and seek,
    so threads share one context and scale only when cores are idle; processes pay start-up per call. On the
    2-core shared machine of bench/verify.py neither beat jobs=1 reliably (0.7–1.0x): use jobs > 1 for big batches.
    """
    if mode not in ("threads", "processes"):
        raise UsageError(f"verify mode must be 'threads' or 'processes', got {mode!r}")
    items = [str(p) for p in paths]
    verifier = Verifier(trust_anchors_pem)
    try:
        if jobs <= 1 or len(items) <= 1:
            return [verifier.verify(p) for p in items]
        if mode == "processes":
            from concurrent.futures import ProcessPoolExecutor

            size = max(1, -(-len(items) // (jobs * 4)))
            chunks = [(verifier.anchors, items[i:i + size]) for i in range(0, len(items), size)]
            with ProcessPoolExecutor(jobs) as pool:
                return [v for part in pool.map(_verify_chunk, chunks) for v in part]
        from concurrent.futures import ThreadPoolExecutor

        verifier._ctx()  # build it once, before threads race for it
        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(verifier.verify, items))
    finally:
        verifier.close()

