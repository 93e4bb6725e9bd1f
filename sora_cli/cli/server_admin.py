"""`sora server`: the accounts of `sora serve` — users and their API keys (shown once, stored as hashes)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from sora_cli.cli.output import DebugOpt, JsonOpt, Output, run

app = typer.Typer(help="Manage the users and API keys of `sora serve`.", no_args_is_help=True)
user_app = typer.Typer(help="Add, list, disable and enable users.", no_args_is_help=True)
key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")

UserArg = Annotated[str, typer.Argument(help="A user name or id.")]


def _store():
    from sora_cli.config import Paths
    from sora_cli.server.settings import ServerSettings
    from sora_cli.server.store import Store

    return Store(ServerSettings(Paths.from_env()).db_path)


def _when(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _show_key(out: Output, user: dict, key: dict, secret: str) -> None:
    if out.json:
        out.emit_json({"user": user["name"], "user_id": user["id"], "key_id": key["id"], "key": secret})
        return
    out.data(secret)
    out.notice(f"key {key['id']} for {user['name']}: shown once, stored only as a hash")


@user_app.command("add")
def user_add(name: Annotated[str, typer.Argument(help="Letters, digits, '-', '_' or '.'.")],
             admin: Annotated[bool, typer.Option("--admin", help="May manage users over the API.")] = False,
             key: Annotated[bool, typer.Option("--key/--no-key", help="Also create a first API key.")] = True,
             json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Add a user (and print a first API key, once)."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.server import auth

        store = _store()
        user = auth.add_user(store, name, "admin" if admin else "user")
        if key:
            row, secret = auth.create_key(store, user["id"])
            _show_key(out, user, row, secret)
        elif out.json:
            out.emit_json({"user": user["name"], "user_id": user["id"], "role": user["role"]})
        else:
            out.data(user["id"])

    run(out, body)


@user_app.command("list")
def user_list(json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List users, their role, state and number of active keys."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        for user in _store().users():
            if out.json:
                out.emit_json({**user, "disabled": bool(user["disabled"])})
            else:
                state = "disabled" if user["disabled"] else "active"
                out.data(f"{user['id']}  {user['name']:<20} {user['role']:<6} {state:<9} {user['keys']} key(s)  "
                         f"since {_when(user['created_at'])}")

    run(out, body)


def _set_disabled(ref: str, disabled: bool, debug: bool) -> None:
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        store = _store()
        user = store.user(ref)
        if user is None:
            raise UsageError(f"no user {ref!r}")
        store.set_disabled(user["id"], disabled)
        out.notice(f"{user['name']} is {'disabled: their keys stop working' if disabled else 'enabled'}")

    run(out, body)


@user_app.command("disable")
def user_disable(user: UserArg, debug: DebugOpt = False) -> None:
    """Disable a user: every key of theirs is refused from the next request on."""
    _set_disabled(user, True, debug)


@user_app.command("enable")
def user_enable(user: UserArg, debug: DebugOpt = False) -> None:
    """Enable a disabled user again."""
    _set_disabled(user, False, debug)


@key_app.command("create")
def key_create(user: UserArg, json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Create an API key for a user; it is printed once and stored only as a hash."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.server import auth

        store = _store()
        row, secret = auth.create_key(store, user)
        _show_key(out, store.user(row["user_id"]) or {"name": user, "id": row["user_id"]}, row, secret)

    run(out, body)


@key_app.command("list")
def key_list(user: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
             json_: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List keys (their id and a hint, never the key)."""
    out = Output(json=json_, debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        store = _store()
        owner = store.user(user) if user else None
        if user and owner is None:
            raise UsageError(f"no user {user!r}")
        names = {u["id"]: u["name"] for u in store.users()}
        for key in store.keys(owner["id"] if owner else None):
            if out.json:
                out.emit_json({**key, "user": names.get(key["user_id"])})
            else:
                state = f"revoked {_when(key['revoked_at'])}" if key["revoked_at"] else "active"
                out.data(f"{key['id']}  {names.get(key['user_id'], '?'):<20} {key['hint']}  {state}")

    run(out, body)


@key_app.command("revoke")
def key_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…), from `sora server key list`.")],
               debug: DebugOpt = False) -> None:
    """Revoke an API key: it is refused from the next request on."""
    out = Output(debug=debug)

    def body() -> None:
        from sora_cli.errors import UsageError

        if not _store().revoke_key(key_id):
            raise UsageError(f"no active key {key_id!r}")
        out.notice(f"revoked {key_id}")

    run(out, body)
