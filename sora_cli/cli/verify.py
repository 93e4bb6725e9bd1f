"""`sora verify-provenance`: C2PA and watermark check of any clip, one verdict per file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, QuietOpt, run

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")
_WORDS = {
    "trusted": "trusted", "intact_untrusted": "intact, signer not trusted",
    "intact_expired": "intact, certificate expired or timestamp untrusted (not forged)",
    "altered": "ALTERED", "no_manifest": "no provenance", "unreadable": "unreadable",
    "watermark_only": "manifest stripped, watermark found: content modified since it was signed",
}


def _expand(targets: list[Path], recursive: bool) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            found = target.rglob("*") if recursive else target.iterdir()
            files += sorted(p for p in found if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            files.append(target)  # a missing or odd path gets an `unreadable` verdict, not a crash
    return files


def verify_provenance(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of clips.")],
    trust_anchors: Annotated[Path | None, typer.Option(help="PEM bundle of trusted roots (the C2PA list).")] = None,
    require_trusted: Annotated[bool, typer.Option(help="Fail (exit 10) unless every file is trusted.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look into sub-folders.")] = False,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Files checked in parallel.")] = 1,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check C2PA manifests and invisible watermarks; exit 0 intact, 6 altered, 8 none, 9 unreadable."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.config import Paths
        from sora_cli.errors import UsageError
        from sora_cli.library import Library
        from sora_cli.provenance.check import check_many, exit_code

        paths_ = Paths.from_env()
        anchors = b""
        if trust_anchors is not None:
            try:
                anchors += trust_anchors.read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read --trust-anchors {trust_anchors}: {exc.strerror}") from None
        anchors += _own_ca(paths_)
        files = _expand(paths, recursive)
        if not files:
            raise UsageError("no video files found (use --recursive for sub-folders)")
        library = Library(paths_.library_db) if paths_.library_db.exists() else None
        checks = check_many(files, jobs=jobs, anchors_pem=anchors or None, library=library)
        for check in checks:
            _render(out, check)
        code = exit_code(checks, require_trusted)
        if code:
            raise typer.Exit(int(code))

    run(out, body)


def _own_ca(paths) -> bytes:
    """Clips you signed yourself verify as trusted: your local CA is an anchor once it exists."""
    from sora_cli.provenance import describe, export_ca

    return export_ca(paths) if describe(paths).get("exists") else b""


def _render(out: Output, check) -> None:
    if out.json:
        out.emit_json(check.to_dict())
        return
    verdict = check.verdict
    out.data(f"{check.path}: {_WORDS.get(check.status, check.status)} — {verdict.reason}")
    if check.watermark and check.watermark["present"]:
        out.data(f"  watermark id {check.watermark['id']} (confidence {check.watermark['confidence']}, "
                 f"false-positive rate {check.watermark['false_positive_rate']:.1e})")
        original = check.original
        if original:
            out.data(f"  original: {original['id']} {original['path']} ({original['status']}), "
                     f"model {original['model']}")
        else:
            out.data("  original: not in this library")
    _render_verdict(out, verdict, depth=1)


def _render_verdict(out: Output, verdict, depth: int) -> None:
    pad = "  " * depth
    if verdict.signer:
        out.data(f"{pad}signer: {verdict.signer.get('common_name')} ({verdict.signer.get('organization')})"
                 f"{', signed ' + verdict.signed_time if verdict.signed_time else ''}")
    if verdict.claim_generator:
        out.data(f"{pad}claim generator: {verdict.claim_generator}")
    if verdict.creation_action:
        source = str(verdict.creation_action.get("digitalSourceType") or "").rsplit("/", 1)[-1]
        out.data(f"{pad}action: {verdict.creation_action.get('action')} {source}".rstrip())
    if verdict.model:
        out.data(f"{pad}model: {verdict.model}")
    for failure in verdict.failures:
        out.data(f"{pad}! {failure.explanation} ({failure.code})")
    for child in verdict.ingredients:
        out.data(f"{pad}└─ {child.relationship or 'ingredient'} {child.title}: "
                 f"{_WORDS.get(child.tree_status, child.tree_status)} — {child.reason}")
        _render_verdict(out, child, depth + 2)
