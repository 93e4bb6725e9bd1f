"""`sora feed` on the local library: real videos (one batch), the real MiniLM, the real CLI."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import FAST, json_lines

PROMPTS = ["a rocket lifting off into space at night", "a ginger cat asleep on a windowsill",
           "planets and stars drifting through deep space", "a kitten chasing a ball of yarn"]


@pytest.fixture
def library(sora, tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("\n".join(PROMPTS) + "\n")
    made = sora("batch", jobs, "-d", tmp_path / "clips", *FAST, "--json")
    assert made.exit_code == 0, made.output
    return {v["prompt"]: v["id"] for v in json_lines(made.stdout)}


def browse(sora, *args):
    result = sora("feed", "browse", "--json", *args)
    assert result.exit_code == 0, result.output
    return json_lines(result.stdout)


def test_local_feed_steers_hides_and_draws_a_sheet(sora, library, tmp_path):
    items = browse(sora)
    assert sorted(i["caption"] for i in items) == sorted(PROMPTS)
    assert all(i["why"] is not None and i["author"] for i in items)

    no_cats = [i["caption"] for i in browse(sora, "--steer", "no cats")]
    assert "cat" not in " ".join(no_cats[:2]) and "kitten" not in " ".join(no_cats[:2])  # cats sink or vanish
    only_space = [i["caption"] for i in browse(sora, "--steer", "only space videos")]
    assert set(only_space[:2]) == {PROMPTS[0], PROMPTS[2]}

    saved = sora("feed", "steer", "more cats", "--json")
    assert saved.exit_code == 0 and json.loads(saved.stdout)["facets"][0]["kind"] == "more"
    assert {i["caption"] for i in browse(sora)[:2]} == {PROMPTS[1], PROMPTS[3]}  # the saved preference applies
    plain = [i["caption"] for i in browse(sora, "--no-personal")]
    assert set(plain[:2]) != {PROMPTS[1], PROMPTS[3]}, plain  # without preferences: newest first
    shown = sora("feed", "steer", "--show", "--json")
    assert [e["facets"][0]["topic"] for e in json_lines(shown.stdout)] == ["cats"]
    assert sora("feed", "steer", "--reset").exit_code == 0
    assert json_lines(sora("feed", "steer", "--show", "--json").stdout) == []

    cat_id = library[PROMPTS[1]]
    assert sora("feed", "hide", cat_id).exit_code == 0
    assert cat_id not in [i["id"] for i in browse(sora)]

    sheet = tmp_path / "sheet.png"
    drawn = sora("feed", "browse", "--sheet", sheet)
    assert drawn.exit_code == 0, drawn.output
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.width > 3 * 240 and img.height > 135
    assert library[PROMPTS[0]] in drawn.stdout  # the table names the items


def test_server_only_actions_say_so(sora, tmp_path):
    for args in (["like", "video_x"], ["follow", "@ana"], ["publish", "video_x"], ["report", "video_x",
                                                                                   "--reason", "spam"]):
        result = sora("feed", *args)
        assert result.exit_code == 2 and "needs a server" in result.stderr, args
    remix = sora("remix", "feed:video_x", "a new look", "-o", tmp_path / "r.mp4")
    assert remix.exit_code == 2 and "--server" in remix.stderr
    assert sora("feed", "browse", "--sheet", tmp_path / "x.jpg").exit_code == 2
    empty = sora("feed", "browse")
    assert empty.exit_code == 0 and "nothing to show yet" in empty.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from sora_cli.server.running import serve_local

    cache = tmp_path_factory.getbasetemp() / "server-cache"  # shared with the other server tests
    with serve_local(tmp_path_factory.mktemp("feed-cli"), {"alice": "user", "bob": "user"}, cache=cache,
                     poll_after_ms=100) as server:
        yield server


def test_publish_browse_like_follow_and_remix_on_a_server(served, sora, tmp_path, monkeypatch):
    url = served.url
    monkeypatch.setenv("SORA_API_KEY", served.keys["alice"])
    made = sora("generate", "a paper boat on a pond", *FAST, "--server", url, "-o", tmp_path / "boat.mp4", "--json")
    assert made.exit_code == 0, made.output
    boat = json.loads(made.stdout)["id"]
    published = sora("feed", "publish", tmp_path / "boat.mp4", "--server", url, "--json")  # a local copy names it
    assert published.exit_code == 0, published.output
    assert json.loads(published.stdout)["id"] == boat

    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    [item] = [i for i in browse(sora, "--server", url) if i["id"] == boat]
    assert item["author"] == "alice" and item["why"] is not None
    liked = sora("feed", "like", boat, "--server", url, "--json")
    assert liked.exit_code == 0 and json.loads(liked.stdout)["likes"] == 1
    followed = sora("feed", "follow", "@alice", "--server", url, "--json")
    assert json.loads(followed.stdout)["following"] is True

    remixed = sora("remix", f"feed:{boat}", "the boat in a snowstorm", "--strength", "0.5", "--server", url,
                   "-o", tmp_path / "snow.mp4", "--json")
    assert remixed.exit_code == 0, remixed.output
    assert json.loads(remixed.stdout)["remixed_from_video_id"] == boat
    from sora_cli.provenance.verify import verify_file

    verdict = verify_file(tmp_path / "snow.mp4")  # the server signed alice's video in as the parent
    assert verdict.ok and [i.relationship for i in verdict.ingredients] == ["parentOf"]
    shown = json.loads(sora("feed", "show", f"feed:{boat}", "--server", url, "--json").stdout)
    assert (shown["likes"], shown["remixes"], shown["liked_by_me"]) == (1, 1, True)

    sheet = tmp_path / "feed.png"
    assert sora("feed", "browse", "--server", url, "--sheet", sheet).exit_code == 0
    with Image.open(sheet) as img:
        assert img.format == "PNG"
    someone_elses = sora("feed", "publish", boat, "--server", url)  # bob cannot publish alice's video
    assert someone_elses.exit_code == 2
