"""Where output goes: data on stdout (paths, or JSON with --json); progress and notices on stderr.

Progress bars draw only when stderr is a terminal; `--quiet` silences notices too; `--events` writes
JSON progress lines to stderr for scripts. Errors are one line; a traceback only with --debug.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TextIO

import typer

from sora_cli.errors import ExitCode, SoraError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notices on stderr.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
EventsOpt = Annotated[bool, typer.Option("--events", help="Write JSON progress lines to stderr.")]


@dataclass
class Output:
    json: bool = False
    quiet: bool = False
    debug: bool = False
    events: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def interactive(self) -> bool:
        return not self.quiet and not self.events and self.stderr.isatty()

    def data(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def emit_json(self, obj: Any) -> None:
        print(json.dumps(obj, ensure_ascii=False), file=self.stdout, flush=True)

    def notice(self, text: str) -> None:
        if self.events:
            self._event({"event": "notice", "message": text})
        elif not self.quiet:
            print(text, file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        if self.events:
            self._event({"event": "warning", "message": text})
        else:
            print(f"warning: {text}", file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print(f"error: {text}", file=self.stderr, flush=True)

    def _event(self, obj: dict) -> None:
        print(json.dumps(obj, ensure_ascii=False), file=self.stderr, flush=True)

    @contextmanager
    def progress(self) -> Iterator[Callable[[Any], None]]:
        """Yield a Reporter for the core: a Rich bar, JSON events, or nothing."""
        if self.events:
            yield lambda ev: self._event({"event": "progress", **{k: v for k, v in vars(ev).items()
                                                                  if v is not None}})
            return
        if not self.interactive:
            yield lambda ev: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=Console(file=self.stderr), transient=True)
        task = bar.add_task("starting", total=None)

        def report(ev: Any) -> None:
            if ev.total:  # denoising steps, or a server's percentage
                bar.update(task, description=ev.phase, completed=ev.step, total=ev.total)
            elif ev.message:
                bar.console.print(ev.message, style="dim", highlight=False)
                bar.update(task, description=ev.phase, total=None)
            else:
                bar.update(task, description=ev.phase, total=None)

        with bar:
            yield report


def run(out: Output, body: Callable[[], Any]) -> None:
    """Run a command body: expected failures become one line and their exit code."""
    try:
        body()
    except SoraError as exc:
        if out.debug:
            traceback.print_exc(file=out.stderr)
        out.error(str(exc))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        out.error("interrupted; nothing was left under the output name")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if out.debug:
            traceback.print_exc(file=out.stderr)
        first = (str(exc).strip().splitlines() or [""])[0]
        hint = "" if out.debug else " (run with --debug for details)"
        out.error(f"unexpected {type(exc).__name__}: {first}{hint}")
        raise typer.Exit(int(ExitCode.ERROR)) from None
