"""`sora login` / `sora logout`: keep a server's API key in the OS keyring (or a 0600 file), checked first."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sora_cli.cli.options import ServerOpt
from sora_cli.cli.output import DebugOpt, Output, QuietOpt, run


def login(
    server: ServerOpt = None,
    key_stdin: Annotated[bool, typer.Option("--key-stdin", help="Read the key from stdin, not a prompt.")] = False,
    default: Annotated[bool, typer.Option("--default", help="Also make this server the default for every "
                                                            "making command (the `server` setting).")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Save an API key for a server (from `sora server key create` there); it is checked before it is kept."""
    out = Output(quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.engines.remote import RemoteClient, RemoteError
        from sora_cli.errors import UsageError
        from sora_cli.remote import Credentials, server_url

        config = Config.load()
        url = server_url(server, config)
        if url is None:
            raise UsageError("which server? give --server URL")
        if key_stdin:
            key = sys.stdin.readline().strip()
        elif sys.stdin.isatty():
            key = typer.prompt(f"API key for {url}", hide_input=True, err=True).strip()
        else:
            raise UsageError("no terminal to ask for the key: pipe it in with --key-stdin")
        if not key:
            raise UsageError("the key is empty")
        with RemoteClient(url, key, retries=1) as client:
            try:
                client.list(limit=1)
            except RemoteError as exc:
                if exc.status in (401, 403):
                    raise UsageError(f"{url} refused the key ({exc.status}); nothing was saved") from None
                raise
        where = Credentials(config.paths).save(url, key)
        if default:
            config.set("server", url)
            config.save()
        out.notice(f"logged in to {url}; the key is in {where}" + (" · default server" if default else ""))

    run(out, body)


def logout(server: ServerOpt = None, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """Forget the saved API key of a server."""
    out = Output(quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.errors import UsageError
        from sora_cli.remote import Credentials, server_url

        config = Config.load()
        url = server_url(server, config)
        if url is None:
            raise UsageError("which server? give --server URL")
        found = Credentials(config.paths).delete(url)
        out.notice(f"forgot the key for {url}" if found else f"no saved key for {url}")

    run(out, body)
