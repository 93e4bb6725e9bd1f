"""`sora config`: the one TOML config file."""

from __future__ import annotations

from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, Output, run

app = typer.Typer(help="Read and change settings in the config file.", no_args_is_help=True)


@app.command()
def path() -> None:
    """Print the config file's path."""
    from sora_cli.config import Paths

    Output().data(str(Paths.from_env().config_file))


@app.command()
def get(key: Annotated[str | None, typer.Argument(help="A key; all keys when absent.")] = None,
        debug: DebugOpt = False) -> None:
    """Print a setting (or all of them)."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.errors import UsageError

        config = Config.load()
        if key is None:
            for name, value in sorted(config.values.items()):
                out.data(f"{name} = {value}")
        elif key in config.values:
            out.data(str(config.values[key]))
        else:
            raise UsageError(f"{key} is not set")

    run(out, body)


@app.command("set")
def set_(key: Annotated[str, typer.Argument()], value: Annotated[str, typer.Argument()],
         debug: DebugOpt = False) -> None:
    """Set a setting."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Config

        config = Config.load()
        config.set(key, value)
        config.save()

    run(out, body)


@app.command()
def unset(key: Annotated[str, typer.Argument()], debug: DebugOpt = False) -> None:
    """Remove a setting."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Config

        config = Config.load()
        config.unset(key)
        config.save()

    run(out, body)
