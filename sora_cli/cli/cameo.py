"""`sora cameo`: enrol a consented likeness, decide who may use it, see its uses, revoke it for good."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sora_cli.cli.options import ServerOpt
from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="Cameos: enrol your likeness with consent, share it, see its uses, revoke it.",
                  no_args_is_help=True)
HandleArg = Annotated[str, typer.Argument(help="The cameo's handle (alice or @alice).")]
PASSPHRASE_ENV = "SORA_CAMEO_PASSPHRASE"
PassFileOpt = Annotated[Path | None, typer.Option("--passphrase-file", help=f"Read the bundle passphrase from this "
                                                  f"file (else ${PASSPHRASE_ENV}, else a prompt).")]


def _book() -> Any:
    from sora_cli.cameo import CameoBook
    from sora_cli.config import Paths

    return CameoBook(Paths.from_env())


def _remote(server: str | None) -> Any:
    """The server's cameo book for --server / $SORA_SERVER / the `server` setting, or None for this machine's."""
    from sora_cli.config import Config
    from sora_cli.remote import RemoteCameos, server_url

    config = Config.load()
    url = server_url(server, config)
    return RemoteCameos.connect(url, config) if url else None


def _settings(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in ("handle", "audience", "approved") if k in data}


def _record(record: Any) -> dict[str, Any]:
    return record.to_dict()


def _show(out: Output, data: dict[str, Any]) -> None:
    if out.json:
        out.emit_json(data)
        return
    for key, value in data.items():
        if isinstance(value, list | tuple):
            value = ", ".join(map(str, value)) or "-"
        out.data(f"{key:<18} {value}")


def _passphrase(file: Path | None, confirm: bool) -> str:
    from sora_cli.errors import UsageError

    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"give the bundle passphrase with --passphrase-file or ${PASSPHRASE_ENV}")
    return typer.prompt("bundle passphrase", hide_input=True, confirmation_prompt=confirm, err=True)


@app.command()
def challenge(server: ServerOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Issue a new random challenge (head turns and a phrase) to record for enrolment."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                issued = remote.challenge()
            if out.json:
                out.emit_json(issued)
            else:
                out.data(issued.get("instructions") or f"turn your head: {', '.join(issued['turns'])}")
                out.notice(f"then: sora cameo enroll --server {remote.url} --video CLIP --name \"Your Name\"")
            return
        issued = _book().new_challenge()
        if out.json:
            out.emit_json(issued.to_dict() | {"instructions": issued.instructions()})
        else:
            out.data(issued.instructions())
            out.notice("then: sora cameo enroll --video CLIP --handle NAME --name \"Your Name\" (within 15 minutes)")

    run(out, body)


@app.command()
def enroll(video: Annotated[Path, typer.Option(help="Your clip performing the pending challenge.")],
           handle: Annotated[str | None, typer.Option(
               help="The handle others tag you with (@handle; on a server, default: your user name).")] = None,
           name: Annotated[str, typer.Option(help="Your display name.")] = "",
           audio: Annotated[Path | None, typer.Option(help="A voice sample to keep with the cameo.")] = None,
           audience: Annotated[str, typer.Option(help="only-me, approved, mutuals or everyone.")] = "only-me",
           mirrored: Annotated[bool, typer.Option(help="The clip is mirrored (a selfie preview).")] = False,
           server: ServerOpt = None,
           json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Enrol your likeness: checks the clip against the pending challenge, stores it encrypted."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        if not name:
            raise UsageError("--name is required: your display name")
        remote = _remote(server)
        if remote is not None:
            if audio is not None:
                raise UsageError("--audio works on local enrolment only")
            with contextlib.closing(remote):
                made = remote.enroll(video, handle=handle, name=name, audience=audience, mirrored=mirrored)
            out.notice(f"enrolled on {remote.url}: liveness passed; only you can grant or revoke it")
            if out.json:
                _show(out, made)
            else:
                out.data(f"@{made['handle']}")
            return
        if not handle:
            raise UsageError("enrolling on this machine needs --handle")
        record = _book().enroll(video, handle=handle, name=name, audio=audio, audience=audience, mirrored=mirrored)
        live = record.liveness
        out.notice(f"liveness passed: turns {', '.join(live['turns_seen'])}, peaks {live['peaks_deg']} degrees; "
                   "the spoken phrase is stored with the consent record, not checked")
        if out.json:
            _show(out, _record(record))
        else:
            out.data(f"@{record.handle}")

    run(out, body)


@app.command()
def grant(handle: HandleArg,
          users: Annotated[list[str] | None, typer.Argument(help="Handles to approve.")] = None,
          audience: Annotated[str | None, typer.Option(help="only-me, approved, mutuals or everyone.")] = None,
          server: ServerOpt = None,
          json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Approve people to use your cameo, and/or set its audience."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                _show(out, _settings(remote.grant(handle, users or [], audience=audience)))
            return
        record = _book().grant(handle, users or [], audience=audience)
        if record.audience == "only-me" and record.approved:
            out.notice("the audience is only-me: approvals count once it is approved or mutuals (--audience)")
        _show(out, {"handle": record.handle, "audience": record.audience, "approved": list(record.approved)})

    run(out, body)


@app.command()
def ungrant(handle: HandleArg, users: Annotated[list[str], typer.Argument(help="Handles to remove.")],
            server: ServerOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Remove people from your cameo's approved list."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                _show(out, _settings(remote.grant(handle, unapprove=users)))
            return
        record = _book().ungrant(handle, users)
        _show(out, {"handle": record.handle, "audience": record.audience, "approved": list(record.approved)})

    run(out, body)


@app.command()
def rules(handle: HandleArg,
          add: Annotated[list[str] | None, typer.Option("--add", help="A rule, e.g. \"no political content\".")] = None,
          remove: Annotated[list[str] | None, typer.Option("--remove", help="A rule to drop.")] = None,
          clear: Annotated[bool, typer.Option(help="Drop every rule first.")] = False,
          json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show or change the text rules on your cameo's use, and how each is checked."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.cameo.rules import parse_rule

        book = _book()
        record = book.set_rules(handle, add or [], remove or [], clear) if (add or remove or clear) \
            else book.get(handle)
        parsed = [parse_rule(r) for r in record.rules]
        if out.json:
            out.emit_json({"handle": record.handle, "rules": [{"text": r.text, "enforced": r.enforced,
                                                                "how": r.describe()} for r in parsed]})
            return
        for rule in parsed:
            out.data(rule.describe())

    run(out, body)


@app.command("list")
def list_(server: ServerOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List the cameos on this machine (active, invalid and revoked), or on a server: yours and those you may use."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                for entry in remote.list():
                    if out.json:
                        out.emit_json(entry)
                    else:
                        out.data(f"@{entry['handle']:<16} {entry.get('access', ''):<9} {entry.get('name', '')}  "
                                 f"{entry.get('audience') or 'owner @' + str(entry.get('owner'))}")
            return
        for entry in _book().list():
            record = entry.pop("record", None)
            if record is not None:
                entry |= {"name": record.name, "audience": record.audience, "approved": list(record.approved),
                          "rules": len(record.rules), "created_at": record.created_at}
            if out.json:
                out.emit_json(entry)
            else:
                extra = f"{entry.get('name', '')}  {entry.get('audience', '')}" if record else \
                    entry.get("revoked_at") or entry.get("reason", "")
                out.data(f"@{entry['handle']:<16} {entry['status']:<8} {extra}")

    run(out, body)


@app.command()
def show(handle: HandleArg, server: ServerOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show a cameo's signed consent record (never its biometric data)."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                _show(out, remote.show(handle))
            return
        book = _book()
        record = book.get(handle)
        _show(out, _record(record) | {"owner_here": book.owns(record.handle),
                                      "uses": len(book.uses(record.handle))})

    run(out, body)


@app.command()
def revoke(handle: HandleArg,
           purge: Annotated[bool, typer.Option(help="Also delete every local video that used the cameo.")] = False,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
           server: ServerOpt = None,
           json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Revoke a cameo for good: its key is destroyed and its data deleted; it cannot be recovered. On a server,
    every draft by others that used it goes too."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("revoking cannot be undone: pass --yes")
            typer.confirm(f"revoke @{handle.removeprefix('@')} for good{' and delete its videos' if purge else ''}?",
                          abort=True, err=True)
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                result = remote.revoke(handle)
            out.notice(f"revoked @{result['handle']} on {remote.url}: {result.get('drafts_removed', 0)} drafts by "
                       "others removed")
            _show(out, result)
            return
        result = _book().revoke(handle, purge=purge)
        deleted = [p["path"] for p in result["purged"] if p["deleted"]]
        out.notice(f"revoked @{result['handle']}: data key destroyed, {len(result['files_removed'])} files deleted"
                   + (f", {len(deleted)} videos deleted" if purge else ""))
        _show(out, {k: v for k, v in result.items() if k != "purged"} | {"videos_deleted": deleted})

    run(out, body)


@app.command()
def uses(handle: HandleArg, server: ServerOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Print every recorded use of a cameo (from the audit log; on a server, every video by anyone, drafts too)."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        remote = _remote(server)
        if remote is not None:
            with contextlib.closing(remote):
                for entry in remote.uses(handle):
                    if out.json:
                        out.emit_json(entry)
                    else:
                        out.data(f"{entry['id']}  {entry['status']:<11} by {entry['author']}"
                                 f"{'  published' if entry.get('published') else ''}  {entry['prompt'][:50]}")
            return
        for entry in _book().uses(handle):
            data = entry["data"]
            if out.json:
                out.emit_json({"seq": entry["seq"], "time": entry["time"], **data})
            else:
                out.data(f"{entry['time']}  {data.get('video_id')}  by @{data.get('requester') or '(owner)'}")

    run(out, body)


@app.command()
def audit(json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Verify the hash-chained audit log of cameo events (exit 6 if it was altered)."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.errors import ExitCode

        report = _book().audit()
        if out.json:
            out.emit_json(report.to_dict())
        else:
            out.data(f"audit log {'intact' if report.ok else 'ALTERED'}: {report.entries} entries")
            for problem in report.problems:
                out.data(f"  {problem}")
        if not report.ok:
            raise typer.Exit(int(ExitCode.PROVENANCE_INVALID))

    run(out, body)


@app.command()
def export(handle: HandleArg, output: Annotated[Path, typer.Option("--output", "-o", help="The bundle file.")],
           passphrase_file: PassFileOpt = None,
           include_owner_key: Annotated[bool, typer.Option(help="Carry the owner key (moving to your own "
                                                                "machine), so the copy can be changed.")] = False,
           debug: DebugOpt = False) -> None:
    """Export a cameo as a signed, passphrase-encrypted bundle."""
    out = Output(debug=debug)

    def body() -> None:
        path = _book().export(handle, output, _passphrase(passphrase_file, confirm=True),
                              include_owner_key=include_owner_key)
        out.data(str(path))

    run(out, body)


@app.command("import")
def import_(bundle: Annotated[Path, typer.Argument(help="A bundle made by `sora cameo export`.")],
            passphrase_file: PassFileOpt = None, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Import a cameo bundle after checking its owner's signatures."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        record = _book().import_bundle(bundle, _passphrase(passphrase_file, confirm=False))
        if out.json:
            _show(out, _record(record))
        else:
            out.data(f"@{record.handle}")

    run(out, body)
