"""`sora library` (also `sora videos`): the videos you made, from the local SQLite library."""

from __future__ import annotations

from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="List, show and remove videos in the local library.", no_args_is_help=True)


def _library():
    from sora_cli.config import Paths
    from sora_cli.library import Library

    return Library(Paths.from_env().library_db)


@app.command("list")
def list_(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
          status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
          json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List videos, newest first."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        for video in _library().list(limit=limit, status=status):
            if out.json:
                out.emit_json(video.to_dict())
            else:
                out.data(f"{video.id}  {video.status:<10} {video.size:>9} {video.seconds:>5}s  "
                         f"{video.model:<8} {video.prompt[:50]}")

    run(out, body)


@app.command()
def show(video_id: Annotated[str, typer.Argument(help="A video id, a unique prefix, or @last.")],
         json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Show one video's record."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        video = _library().get(video_id)
        if out.json:
            out.emit_json(video.to_dict())
            return
        for key, value in video.to_dict().items():
            if value not in (None, {}, ""):
                out.data(f"{key:<22} {value}")

    run(out, body)


@app.command()
def rm(video_id: Annotated[str, typer.Argument(help="A video id, a unique prefix, or @last.")],
       delete_file: Annotated[bool, typer.Option(help="Also delete the video file.")] = False,
       debug: DebugOpt = False) -> None:
    """Remove a video from the library (and its thumbnail; the file too with --delete-file)."""
    out = Output(debug=debug)

    def body() -> None:
        from pathlib import Path

        video = _library().delete(video_id)
        for path, wanted in ((video.thumbnail_path, True), (video.path, delete_file)):
            if path and wanted:
                Path(path).unlink(missing_ok=True)
        out.notice(f"removed {video.id}" + (f" and {video.path}" if delete_file and video.path else ""))

    run(out, body)
