"""`sora keys`: the certificate and key every video is signed with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="Show, export and import the C2PA signing identity.", no_args_is_help=True)


@app.command()
def show(json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show the signing certificate, its CA, and where the private key lives."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.config import Paths
        from sora_cli.provenance import describe

        info = describe(Paths.from_env())
        if out.json:
            out.emit_json(info)
            return
        for key, value in info.items():
            out.data(f"{key:<20} {value}")

    run(out, body)


@app.command("export-ca")
def export_ca_(output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here, not stdout.")] = None,
               debug: DebugOpt = False) -> None:
    """Print the root certificate (PEM) others pass to verify-provenance --trust-anchors."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Paths
        from sora_cli.media.encode import write_bytes
        from sora_cli.provenance import export_ca

        pem = export_ca(Paths.from_env())
        if output is None:
            out.data(pem.decode().rstrip())
        else:
            write_bytes(pem, output)

    run(out, body)


@app.command("import")
def import_(cert: Annotated[Path, typer.Option(help="Certificate chain PEM (leaf first).")],
            key: Annotated[Path, typer.Option(help="The leaf's private key PEM.")],
            debug: DebugOpt = False) -> None:
    """Sign with a certificate from a real CA instead of the local one."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Paths
        from sora_cli.provenance import import_identity

        identity = import_identity(Paths.from_env(), cert, key)
        out.notice(f"signing as {identity.subject}; the private key is in {identity.key_location}")

    run(out, body)
