"""`sora feed`: browse your library or a server's community, steer it in plain words, publish, like, follow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.options import ServerOpt
from sora_cli.cli.output import DebugOpt, JsonOpt, Output, QuietOpt, run

app = typer.Typer(help="Browse, steer and share videos: your library, or a server's community (--server).",
                  no_args_is_help=True)
ItemArg = Annotated[str, typer.Argument(help="A feed item id (feed:ID works too).")]


def _age(stamp: float | None) -> str:
    if not stamp:
        return "-"
    seconds = max(0, time.time() - stamp)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


def _feed(server: str | None):
    from sora_cli.feed.service import open_feed

    return open_feed(server)


@app.command()
def browse(
    server: ServerOpt = None,
    steer: Annotated[str | None, typer.Option(
        help='Steer this browse in plain words: "more space videos, fewer romantic comedies", "no horror", '
             '"only cats". Saved preferences (sora feed steer) apply too.')] = None,
    limit: Annotated[int, typer.Option(help="How many items.", min=1, max=200)] = 20,
    personal: Annotated[bool, typer.Option("--personal/--no-personal",
                                           help="Use steering and saved preferences.")] = True,
    sheet: Annotated[Path | None, typer.Option(help="Also write a contact sheet of the thumbnails (PNG).")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The feed, best first, with why each item is there."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        if sheet is not None and sheet.suffix.lower() != ".png":
            raise UsageError(f"--sheet {sheet} must end in .png")
        feed = _feed(server)
        try:
            page = feed.browse(steer=steer, limit=limit, personalised=personal)
            items = page.get("data", [])
            if sheet is not None:
                _sheet(feed, items, sheet)
        finally:
            feed.close()
        if page.get("steering"):
            out.notice("steering: " + ", ".join(f"{f['kind']} {f['topic']}" for f in page["steering"]))
        if out.json:
            for item in items:
                out.emit_json(item)
        else:
            _table(out, items)
        if sheet is not None:
            out.notice(f"contact sheet: {sheet}")
        if page.get("remaining_today") is not None:
            out.notice(f"{page['remaining_today']} more today")
        if page.get("nudge"):
            out.notice(page["nudge"])
        elif not items:
            out.notice("nothing to show yet: make something with `sora generate \"…\"`")

    run(out, body)


def _table(out: Output, items: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for name, style in (("#", "dim"), ("id", "cyan"), ("caption", ""), ("by", "green"), ("age", "dim"),
                        ("remixes", ""), ("likes", ""), ("why", "magenta")):
        table.add_column(name, style=style or None, overflow="fold", no_wrap=name in ("id", "age"))
    for n, item in enumerate(items, 1):
        caption = (item.get("caption") or item.get("prompt") or "")[:60]
        table.add_row(str(n), item["id"], caption, str(item.get("author") or "-"), _age(item.get("created_at")),
                      str(item.get("remixes", 0)), str(item.get("likes", 0)), item.get("why") or "")
    Console(file=out.stdout, width=None if out.interactive else 160).print(table)


def _sheet(feed, items: list[dict], target: Path) -> None:
    import tempfile

    from sora_cli.feed.sheet import Tile, contact_sheet

    with tempfile.TemporaryDirectory(prefix="sora-sheet-") as folder:
        tiles = [Tile(feed.thumbnail(item, Path(folder)), item.get("caption") or item.get("prompt") or item["id"],
                      f"{item.get('author') or '-'} · {item.get('why') or ''}") for item in items]
        contact_sheet(tiles, target)


@app.command()
def show(
    item_id: ItemArg,
    server: ServerOpt = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the video in the system's player.")] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """One feed item: caption, author, counts, lineage."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        feed = _feed(server)
        try:
            item = feed.item(item_id)
            if open_:
                from sora_cli.config import Config

                folder = Config.load().paths.cache_dir / "feed-videos"
                folder.mkdir(parents=True, exist_ok=True)
                path = feed.video_file(item, folder)
                typer.launch(str(path))
        finally:
            feed.close()
        if out.json:
            out.emit_json(item)
            return
        for key in ("id", "author", "caption", "created_at", "published_at", "likes", "remixes", "liked_by_me",
                    "remixed_from_video_id", "seconds", "size", "model", "path"):
            if item.get(key) not in (None, ""):
                out.data(f"{key:<22} {item[key]}")

    run(out, body)


@app.command()
def steer(
    sentence: Annotated[str | None, typer.Argument(help='"more space videos, fewer romantic comedies"')] = None,
    server: ServerOpt = None,
    reset: Annotated[bool, typer.Option("--reset", help="Forget every saved preference.")] = False,
    show_: Annotated[bool, typer.Option("--show", help="List the saved preferences and their weight now.")] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Save a standing preference for the feed; it fades over days (half-life 3 days)."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        if sum((sentence is not None, reset, show_)) != 1:
            raise UsageError("give a sentence, --reset or --show")
        feed = _feed(server)
        try:
            if reset:
                out.notice(f"forgot {feed.reset_steers()} saved preference(s)")
            elif show_:
                saved = feed.steers()
                for entry in saved:
                    if out.json:
                        out.emit_json(entry)
                    else:
                        facets = ", ".join(f"{f['kind']} {f['topic']}" for f in entry.get("facets", []))
                        out.data(f"{entry['id']}  weight {entry.get('weight', 1):.2f}  {facets}")
                if not saved:
                    out.notice("no saved preferences")
            else:
                saved = feed.save_steer(sentence)
                if out.json:
                    out.emit_json(saved)
                out.notice("saved: " + ", ".join(f"{f['kind']} {f['topic']}" for f in saved["facets"]))
        finally:
            feed.close()

    run(out, body)


def _act(out: Output, server: str | None, what: str, action) -> None:
    feed = _feed(server)
    try:
        if feed.kind == "local" and what:
            feed.server_only(what)
        result = action(feed)
    finally:
        feed.close()
    if out.json:
        out.emit_json(result)
    else:
        out.notice(" · ".join(f"{k} {v}" for k, v in result.items() if k != "object"))


@app.command()
def publish(
    video: Annotated[str, typer.Argument(help="A video made on the server: its id, or a local copy/@last.")],
    server: ServerOpt = None,
    caption: Annotated[str | None, typer.Option(help="What the feed shows (default: the prompt).")] = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Share one of your server-made videos on that server's feed."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        def action(feed):
            return feed.publish(_server_id(video, feed.url), caption)

        _act(out, server, "publishing", action)

    run(out, body)


def _server_id(ref: str, url: str) -> str:
    """A server video id for `ref`: given as one, or the id of a local copy downloaded from that server."""
    from sora_cli.config import Config
    from sora_cli.errors import InputError, UsageError
    from sora_cli.library import Library
    from sora_cli.sources import find_video

    if ref.startswith(("video_", "feed:")) and "/" not in ref:
        try:
            _, video = find_video(ref, Library(Config.load().paths.library_db))
        except InputError:
            return ref.removeprefix("feed:")
    else:
        _, video = find_video(ref, Library(Config.load().paths.library_db))
    origin = (video.parameters.get("remote") or {}) if video else {}
    if origin.get("server") != url:
        raise UsageError(f"{ref} was not made on {url}: only videos made there can be published there")
    return origin["id"]


def _simple(name: str, help_text: str, method: str, server_only: bool = True):
    def command(
        item_id: ItemArg,
        server: ServerOpt = None,
        undo: Annotated[bool, typer.Option("--undo", help="Take it back.")] = False,
        json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
    ) -> None:
        out = Output(json=json_, quiet=quiet, debug=debug)

        def body() -> None:
            def action(feed):
                call = getattr(feed, method)
                if undo and not server_only:
                    from sora_cli.errors import UsageError

                    raise UsageError(f"--undo works with like and follow, not {name}")
                return call(item_id, undo=True) if undo else call(item_id)

            _act(out, server, name if server_only else "", action)

        run(out, body)

    command.__doc__ = help_text
    app.command(name)(command)


_simple("like", "Like a feed item (--undo to unlike).", "like")
_simple("follow", "Follow a user: their videos come first in your feed (--undo to unfollow).", "follow")
_simple("hide", "Never show this item again.", "hide", server_only=False)
_simple("see-less", "Show fewer items like this one (fades over two weeks).", "see_less", server_only=False)


@app.command()
def report(
    item_id: ItemArg,
    reason: Annotated[str, typer.Option(help="What is wrong with it.")],
    server: ServerOpt = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Report a feed item to the server's admins."""
    out = Output(json=json_, quiet=quiet, debug=debug)

    def body() -> None:
        _act(out, server, "reporting", lambda feed: feed.report(item_id, reason))

    run(out, body)
