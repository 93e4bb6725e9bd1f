"""`sora models`: built-in models, aliases for checkpoints, and what each can do."""

from __future__ import annotations

from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="List, add, show and remove models.", no_args_is_help=True)


def _describe(info) -> dict:
    return {
        "name": info.alias or info.ref, "source": info.source, "location": info.location,
        "family": info.family.name, "pipeline": info.class_name, "tasks": list(info.tasks),
        "defaults": vars(info.defaults),
        **({"description": info.builtin.description} if info.builtin else {}),
    }


@app.command("list")
def list_(json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List built-in models and aliases with their family and tasks."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.errors import SoraError
        from sora_cli.models import peek_model
        from sora_cli.plugins import load_registry

        config, registry = Config.load(), load_registry()
        for warning in registry.warnings:
            out.warn(warning)
        for name in [*registry.builtin_models, *sorted(config.models)]:
            try:
                row = _describe(peek_model(name, config, registry))
            except SoraError as exc:
                row = {"name": name, "source": "alias", "location": config.models.get(name), "error": str(exc)}
            if out.json:
                out.emit_json(row)
            elif "error" in row:
                out.data(f"{row['name']:<16} unavailable: {row['error']}")
            else:
                out.data(f"{row['name']:<16} {row['family']:<12} {','.join(row['tasks']):<22} {row['location']}")

    run(out, body)


@app.command()
def show(name: Annotated[str, typer.Argument(help="Model name, alias, folder or hub id.")],
         json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show a model's family, pipeline, tasks and defaults."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.models import local_folder, model_fingerprint, resolve_model
        from sora_cli.plugins import load_registry

        info = resolve_model(name, Config.load(), load_registry())
        row = _describe(info)
        folder = local_folder(info)
        row["hash"] = model_fingerprint(folder) if folder else None
        if out.json:
            out.emit_json(row)
        else:
            for key, value in row.items():
                out.data(f"{key:<12} {value}")

    run(out, body)


@app.command()
def add(name: Annotated[str, typer.Argument(help="The alias to create.")],
        target: Annotated[str, typer.Argument(help="A pipeline folder or a hub id.")],
        debug: DebugOpt = False) -> None:
    """Add an alias for a checkpoint folder or hub id (validated first)."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.models import add_alias
        from sora_cli.plugins import load_registry

        info = add_alias(Config.load(), name, target, load_registry())
        out.notice(f"{name} → {info.location} ({info.family.label}, {', '.join(info.tasks)})")

    run(out, body)


@app.command()
def remove(name: Annotated[str, typer.Argument(help="The alias to remove.")], debug: DebugOpt = False) -> None:
    """Remove an alias (the checkpoint's files are not touched)."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.config import Config
        from sora_cli.errors import UsageError

        config = Config.load()
        if name not in config.models:
            raise UsageError(f"no alias {name!r}")
        del config.models[name]
        config.save()
        out.notice(f"removed alias {name}")

    run(out, body)
