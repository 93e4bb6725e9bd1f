"""`sora policy check` and `sora policy show`, through Typer's runner on the sub-app (rules only: no model)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sora_cli.cli import policy

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(policy.app, list(args), catch_exceptions=False)


def test_check_allows_and_refuses_with_exit_codes() -> None:
    ok = invoke("check", "a chef cutting onions with a sharp knife", "--rules-only")
    assert ok.exit_code == 0 and ok.stdout.strip() == "allowed"
    refused = invoke("check", "a decapitated man in a pool of blood", "--rules-only")
    assert refused.exit_code == 5 and "graphic violence" in refused.stdout and "decapitated" in refused.stdout
    grey = invoke("check", "a boxer with a bloody lip", "--rules-only")
    assert grey.exit_code == 5 and grey.stdout.startswith("please rephrase")


def test_check_json_and_rights(home: Path) -> None:
    out = invoke("check", "Pikachu surfing", "--rules-only", "--json")
    data = json.loads(out.stdout)
    assert out.exit_code == 5 and data["layer"] == "rights" and data["category"] == "copyrighted_character"
    config = home / "config"
    config.mkdir(parents=True)
    (config / "rights.toml").write_text('[[grant]]\ncharacter = "Pikachu"\nholder = "TPC"\nuses = ["parody"]\n')
    assert invoke("check", "Pikachu surfing", "--rules-only", "--use", "parody").exit_code == 0
    assert invoke("check", "Pikachu surfing", "--rules-only", "--use", "ads").exit_code == 5


def test_show_lists_files_and_categories(home: Path) -> None:
    out = invoke("show")
    assert out.exit_code == 0 and "default_policy.toml" in out.stdout and "minors_sexual" in out.stdout
    assert "refuse*" in out.stdout and "(none: no character is opted in)" in out.stdout
    config = home / "config"
    config.mkdir(parents=True)
    (config / "policy.toml").write_text('[[overrides]]\ncategory = "violence"\nusers = ["@studio"]\n')
    data = json.loads(invoke("show", "--json").stdout)
    assert data["files"][-1].endswith("policy.toml") and data["overrides"][0]["users"] == ["@studio"]
    assert [c["name"] for c in data["categories"]][0] == "minors_sexual"


def test_a_weakening_admin_file_is_a_usage_error(home: Path) -> None:
    config = home / "config"
    config.mkdir(parents=True)
    (config / "policy.toml").write_text('[categories.minors_sexual]\naction = "allow"\n')
    out = invoke("show")
    assert out.exit_code == 2 and "minors_sexual" in out.stderr
