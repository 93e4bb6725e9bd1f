"""The SQLite library (numbered migrations) and the TOML config, through the CLI."""

from __future__ import annotations

import sqlite3

from conftest import FAST, json_lines

from sora_cli.config import Paths
from sora_cli.errors import ExitCode
from sora_cli.library import MIGRATIONS, Library


def test_library_list_show_rm(sora, tmp_path):
    for name in ("one", "two"):
        assert sora("generate", name, "-o", tmp_path / f"{name}.mp4", *FAST).exit_code == 0
    rows = json_lines(sora("library", "list", "--json").stdout)
    assert [r["prompt"] for r in rows] == ["two", "one"]
    last = sora("library", "show", "@last", "--json")
    assert json_lines(last.stdout)[0]["id"] == rows[0]["id"]
    prefix = rows[1]["id"].removeprefix("video_")[:8]
    assert sora("videos", "show", prefix).exit_code == 0  # the `videos` alias and id prefixes
    result = sora("library", "rm", rows[1]["id"], "--delete-file")
    assert result.exit_code == 0
    assert not (tmp_path / "one.mp4").exists() and (tmp_path / "two.mp4").exists()
    assert len(json_lines(sora("library", "list", "--json").stdout)) == 1
    missing = sora("library", "show", "video_nope")
    assert missing.exit_code == ExitCode.USAGE and "no video" in missing.stderr


def test_migrations_are_numbered_and_applied_once(tmp_path):
    db = tmp_path / "lib.db"
    Library(db)
    Library(db)  # a second open does not re-run them
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_config_set_get_path(sora, home):
    path = sora("config", "path").stdout.strip()
    assert path == str(home / "config" / "config.toml")
    assert sora("config", "set", "steps", "3").exit_code == 0
    assert sora("config", "get", "steps").stdout.strip() == "3"
    assert "steps = 3" in Paths.from_env().config_file.read_text()
    bad = sora("config", "set", "steps", "many")
    assert bad.exit_code == ExitCode.USAGE and "needs a int" in bad.stderr
    unknown = sora("config", "set", "colour", "red")
    assert unknown.exit_code == ExitCode.USAGE and "unknown config key" in unknown.stderr


def test_a_broken_config_file_is_one_line(sora, home):
    Paths.from_env().config_dir.mkdir(parents=True)
    Paths.from_env().config_file.write_text("steps = [\n")
    result = sora("generate", "a cat")
    assert result.exit_code == ExitCode.USAGE and "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr
