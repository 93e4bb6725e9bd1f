"""`sora policy`: test a prompt against the active moderation policy, and show that policy."""

from __future__ import annotations

from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="Check prompts against the moderation policy and show the policy in force.",
                  no_args_is_help=True)


@app.command()
def check(prompt: Annotated[str, typer.Argument(help="The prompt to check ('-' reads stdin).")],
          rules_only: Annotated[bool, typer.Option("--rules-only", help="Skip the MiniLM layer.")] = False,
          user: Annotated[str | None, typer.Option(help="Check as this @handle (admin overrides, rights).")] = None,
          use: Annotated[str | None, typer.Option(help="Declared use for copyrighted characters, e.g. parody.")]
          = None,
          commercial: Annotated[bool, typer.Option("--commercial", help="The use is commercial.")] = False,
          json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Say whether a prompt would be allowed; exit 5 when it would be refused or asked to be rephrased."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        import sys

        from sora_cli.safety import Context, Moderator

        text = sys.stdin.read().strip() if prompt == "-" else prompt
        moderator = Moderator.from_paths()
        decision = moderator.check(text, Context(source="cli", user=user, use=use, commercial=commercial),
                                   model=not rules_only)
        if out.json:
            out.emit_json(decision.to_dict())
        else:
            out.data(decision.message)
        if not decision.allowed:
            raise typer.Exit(5)

    run(out, body)


@app.command()
def show(json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Print the policy in force: its files, categories, overrides and the rights registry."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.config import Paths
        from sora_cli.safety import load_policy, load_rights

        paths = Paths.from_env()
        policy = load_policy(paths)
        rights = load_rights(paths, known={c.name for c in policy.characters})
        info = policy.describe() | {"rights": rights.describe()}
        if out.json:
            out.emit_json(info)
            return
        out.data(f"policy files   {' + '.join(info['files'])}")
        out.data(f"rights file    {rights.file or '(none: no character is opted in)'}")
        out.data(f"log prompts    {'yes' if policy.log_prompts else 'no (sha256 only)'}")
        out.data(f"{'category':<24}{'action':<8}{'rules':>6}{'grey':>6}{'examples':>10}{'anchors':>9}  threshold")
        for c in info["categories"]:
            action = c["action"] + ("*" if c["locked"] else "")
            out.data(f"{c['name']:<24}{action:<8}{c['rules']:>6}{c['grey_rules']:>6}{c['examples']:>10}"
                     f"{c['anchors']:>9}  {c['threshold']:.2f} (margin {c['margin']:.2f}, grey {c['grey']:.2f})")
        out.data("* locked: never overridden, never weakened")
        for o in info["overrides"]:
            who = ", ".join(o["users"]) or "everyone"
            out.data(f"override       {o['category']} for {who}" + (f" ({o['reason']})" if o["reason"] else ""))
        for g in info["rights"]["grants"]:
            out.data(f"opt-in         {g['character']} by {g['holder'] or '?'}: {g['scope']}")

    run(out, body)
