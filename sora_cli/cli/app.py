"""The `sora` command: one module per command group, composed here."""

from __future__ import annotations

import os
from typing import Annotated

# numpy's OpenBLAS keeps its worker threads spinning ~0.1 s after each product (2**28 cycles), which takes a core
# from the pipeline after every moderation check; 2**4 cycles puts them to sleep at once, at no cost to the check's
# latency (bench/overhead). Read when numpy loads, so set before anything imports it; a user's own value stays.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import typer

from sora_cli import __version__
from sora_cli.cli import cameo, config, feed, keys, library, models, policy, server_admin
from sora_cli.cli.batch import batch
from sora_cli.cli.create import animate_image, extend, remix
from sora_cli.cli.generate import generate
from sora_cli.cli.login import login, logout
from sora_cli.cli.serve import serve
from sora_cli.cli.verify import verify_provenance

app = typer.Typer(
    name="sora",
    help="Words, photos and clips into short videos, on local diffusers pipelines.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold tokens
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"sora-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    """Words, photos and clips into short videos, on local diffusers pipelines."""


app.command()(generate)
app.command("animate-image")(animate_image)
app.command()(remix)
app.command()(extend)
app.command()(batch)
app.add_typer(models.app, name="models")
app.add_typer(library.app, name="library")
app.add_typer(library.app, name="videos", hidden=True)
app.command("verify-provenance")(verify_provenance)
app.add_typer(keys.app, name="keys")
app.add_typer(policy.app, name="policy")
app.add_typer(cameo.app, name="cameo")
app.add_typer(feed.app, name="feed")
app.add_typer(config.app, name="config")
app.command()(serve)
app.command()(login)
app.command()(logout)
app.add_typer(server_admin.app, name="server")


def main() -> None:
    app()
