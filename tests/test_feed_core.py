"""Feed core: parsing steering sentences, scoring facets with the real MiniLM, ranking, saved preferences.

Rankings run on the labelled captions of tests/data/feed/captions.jsonl (14 themes x 16), so a test can say
"no horror caption in the top 30" and mean it.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from sora_cli.errors import UsageError
from sora_cli.feed import FeedItem, Preferences, parse
from sora_cli.feed.rank import rank
from sora_cli.feed.steer import KINDS, Facet, embed, score

DATA = Path(__file__).parent / "data" / "feed"
NOW = 1_800_000_000.0
DAY = 86400.0
ROWS = [json.loads(x) for x in (DATA / "captions.jsonl").read_text().splitlines() if x.strip()]
THEME = {r["id"]: r["theme"] for r in ROWS}


# -- parsing (no model) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sentence", "facets"), [
    ("more space videos, fewer romantic comedies", [("more", "space"), ("fewer", "romantic comedies")]),
    ("less of the horror stuff please", [("fewer", "horror")]),
    ("no horror please", [("no", "horror")]),
    ("only cats", [("only", "cats")]),
    ("cats only", [("only", "cats")]),
    ("I'm tired of sports, show me lots of cooking", [("fewer", "sports"), ("more", "cooking")]),
    ("I\u2019m sick of dancing. more football and basketball",
     [("fewer", "dancing"), ("more", "football"), ("more", "basketball")]),
    ("no zombies or ghosts, more astronauts", [("no", "zombies"), ("no", "ghosts"), ("more", "astronauts")]),
    ("not so many cars, but dance", [("fewer", "cars"), ("more", "dance")]),
    ("show me less horror", [("fewer", "horror")]),
    ("I don't want more horror", [("no", "horror")]),
    ("just gardening clips", [("only", "gardening")]),
    ("dance videos", [("more", "dance")]),
    ("give me wildlife documentaries; stop showing me city traffic",
     [("more", "wildlife documentaries"), ("no", "city traffic")]),
])
def test_parse(sentence: str, facets: list[tuple[str, str]]) -> None:
    assert [(f.kind, f.topic) for f in parse(sentence).facets] == facets


def test_parse_intensity_and_nothing() -> None:
    assert [f.weight for f in parse("a bit more cats, way fewer cars").facets] == [0.5, 1.5]
    with pytest.raises(UsageError, match="no topic"):
        parse("please, thanks")


def test_parse_kinds_of_every_labelled_sentence() -> None:
    for line in (DATA / "steering.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert {f.kind for f in parse(row["sentence"]).facets} == {k for k in KINDS if row[k]}, row["sentence"]


def test_import_loads_nothing_heavy() -> None:
    code = "import sys, sora_cli.feed; print(sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- with the real MiniLM -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feed-cache")


@pytest.fixture(scope="module")
def encoder():
    from sora_cli.feed.browse import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def vectors(encoder, cache: Path):
    from sora_cli.feed.browse import caption_vectors

    return caption_vectors(encoder, [r["caption"] for r in ROWS], cache)


@pytest.fixture(scope="module")
def items() -> list[FeedItem]:
    """Every caption as a video of a different author, ages spread over a week, a little activity."""
    return [FeedItem(r["id"], r["caption"], author=f"user{i}", created_at=NOW - (i * 7919 % 604800),
                     remixes=i % 5, likes=i % 13) for i, r in enumerate(ROWS)]


def ranked_ids(items, vectors, encoder, cache, sentence: str | None = None, **kw) -> list[str]:
    facets = embed(parse(sentence).facets, encoder, cache) if sentence else ()
    return [r.item.id for r in rank(items, now=NOW, vectors=vectors, steering=facets, limit=None, **kw)]


def mean_rank(order: list[str], theme: str) -> float:
    return statistics.mean(order.index(i) + 1 if i in order else len(ROWS) for i in THEME if THEME[i] == theme)


def top(order: list[str], theme: str, k: int = 10) -> int:
    return sum(THEME[i] == theme for i in order[:k])


def test_fewer_is_not_more(items, vectors, encoder, cache) -> None:
    plain = ranked_ids(items, vectors, encoder, cache)
    fewer = ranked_ids(items, vectors, encoder, cache, "fewer horror")
    more = ranked_ids(items, vectors, encoder, cache, "more horror")
    assert mean_rank(more, "horror") < mean_rank(plain, "horror") - 40
    assert mean_rank(fewer, "horror") > mean_rank(plain, "horror") + 40
    assert top(fewer, "horror", 20) == 0 and top(more, "horror") >= 5


def test_no_removes_from_the_top(items, vectors, encoder, cache) -> None:
    order = ranked_ids(items, vectors, encoder, cache, "no horror please")
    assert top(order, "horror", 60) == 0
    gone = set(THEME) - set(order)  # clear matches are hidden, not merely buried
    assert len(gone) >= 5 and all(THEME[i] == "horror" for i in gone)


def test_no_for_an_absent_topic_hides_nothing(items, vectors, encoder, cache) -> None:
    cats = [i for i, it in enumerate(items) if THEME[it.id] == "cats"] * 3  # 48 videos, all of cats
    feed = [dataclasses.replace(items[i], id=f"{items[i].id}-{k}") for k, i in enumerate(cats)]
    facets = embed(parse("no sharks, no volcanoes").facets, encoder, cache)
    assert not score(facets, vectors[cats]).hidden.any()
    assert len(rank(feed, now=NOW, vectors=vectors[cats], steering=facets, limit=None)) == len(feed)


def test_only_cats(items, vectors, encoder, cache) -> None:
    order = ranked_ids(items, vectors, encoder, cache, "only cats")
    assert top(order, "cats", 10) == 10
    assert top(order, "cats", 16) >= 14


def test_combined_sentence(items, vectors, encoder, cache) -> None:
    order = ranked_ids(items, vectors, encoder, cache, "more space videos, fewer romantic comedies")
    assert top(order, "space") >= 4 and top(order, "romance", 30) == 0
    assert mean_rank(order, "romance") > 150 and mean_rank(order, "space") < 80


def test_why_names_the_steer(items, vectors, encoder, cache) -> None:
    facets = embed(parse("only cats").facets, encoder, cache)
    first = rank(items, now=NOW, vectors=vectors, steering=facets, limit=3)
    assert all("only cats (" in r.why for r in first)


def test_follows_first(items, vectors) -> None:
    # ana's five videos are three days old and have no activity; everyone else's are fresh and busy
    ana = {ROWS[k]["id"] for k in (0, 40, 80, 120, 160)}
    feed = [dataclasses.replace(it, author="ana", created_at=NOW - 3 * DAY, remixes=0, likes=0) if it.id in ana
            else dataclasses.replace(it, created_at=NOW - 600, remixes=20, likes=100) for it in items]
    ranked = rank(feed, now=NOW, vectors=vectors, follows={"@ana"}, limit=10)
    assert {r.item.id for r in ranked[:5]} == ana
    assert all(r.why.startswith("you follow @ana") for r in ranked[:5])
    assert "you follow" not in ranked[5].why


def test_diversity(items, vectors) -> None:
    # every cat video is new and popular: without the diversity pass they fill the top 10
    feed = [dataclasses.replace(it, created_at=NOW - 600, remixes=30) if THEME[it.id] == "cats" else it
            for it in items]
    plain = [r.item.id for r in rank(feed, now=NOW, vectors=vectors, limit=10, diversity=0.0)]
    mixed = [r.item.id for r in rank(feed, now=NOW, vectors=vectors, limit=10)]
    assert top(plain, "cats") == 10
    assert top(mixed, "cats") <= 5
    assert len({THEME[i] for i in mixed}) >= 4


def test_saved_steer_decays(items, vectors, encoder, cache, tmp_path: Path) -> None:
    prefs = Preferences(tmp_path / "feed.db")
    prefs.add(parse("more space"), now=NOW)

    def space_rank(days: float) -> float:
        facets = embed(prefs.facets(now=NOW + days * DAY), encoder, cache)
        later = [dataclasses.replace(it, created_at=it.created_at + days * DAY) for it in items]  # same ages
        order = [r.item.id for r in rank(later, now=NOW + days * DAY, vectors=vectors, steering=facets, limit=None)]
        return mean_rank(order, "space")

    assert [round(f.weight, 3) for f in prefs.facets(now=NOW + 3 * DAY)] == [0.5]
    assert prefs.facets(now=NOW + 30 * DAY) == ()
    fresh, half, gone = space_rank(0), space_rank(3), space_rank(30)
    plain = mean_rank(ranked_ids(items, vectors, encoder, cache), "space")
    assert fresh < half - 5 < gone - 10
    assert gone == plain
    [saved] = prefs.show(now=NOW + 3 * DAY)
    assert saved.sentence == "more space" and saved.weight == pytest.approx(0.5)
    assert prefs.reset() == 1 and prefs.show(now=NOW) == []


def test_saved_no_hides_then_fades(items, vectors, encoder, cache, tmp_path: Path) -> None:
    prefs = Preferences(tmp_path / "feed.db", half_life_days=3)
    prefs.add(parse("no horror"), now=NOW)
    now_facets = embed(prefs.facets(now=NOW), encoder, cache)
    later_facets = embed(prefs.facets(now=NOW + 6 * DAY), encoder, cache)  # weight 0.25
    assert score(now_facets, vectors).hidden.sum() > 0
    assert score(later_facets, vectors).hidden.sum() == 0


def test_see_less_like_this(items, vectors, encoder, cache, tmp_path: Path) -> None:
    prefs = Preferences(tmp_path / "feed.db")
    plain = ranked_ids(items, vectors, encoder, cache)
    zombies = next(r for r in ROWS if "zombie" in r["caption"])
    prefs.see_less(zombies["id"], zombies["caption"], now=NOW)
    facets = embed(prefs.facets(now=NOW), encoder, cache)
    order = [r.item.id for r in rank(items, now=NOW, vectors=vectors, steering=facets, hidden=prefs.hidden(),
                                     limit=None)]
    assert zombies["id"] not in order
    assert mean_rank(order, "horror") > mean_rank(plain, "horror") + 30
    assert json.loads(prefs.export(now=NOW))["hidden"] == [zombies["id"]]


def test_not_personalised_ignores_steering(items, vectors, encoder, cache) -> None:
    plain = ranked_ids(items, vectors, encoder, cache)
    assert ranked_ids(items, vectors, encoder, cache, "only cats", personalised=False) == plain


def test_facets_need_vectors(vectors) -> None:
    with pytest.raises(ValueError, match="embed"):
        score([Facet("more", "space")], vectors)


def test_browse_end_to_end(items, encoder, cache, tmp_path: Path) -> None:
    from sora_cli.feed.browse import browse

    prefs = Preferences(tmp_path / "feed.db")
    prefs.add(parse("no horror"), now=NOW - DAY)
    prefs.hide("cats-00", now=NOW)
    ranked = browse(items, encoder=encoder, now=NOW, prefs=prefs, steer="only cats", cache_dir=cache, limit=12)
    ids = [r.item.id for r in ranked]
    assert len(ids) == 12 and "cats-00" not in ids and all(THEME[i] == "cats" for i in ids)
    plain = browse(items, encoder=encoder, now=NOW, prefs=prefs, steer="only cats", cache_dir=cache, limit=12,
                   personalised=False)
    assert sum(THEME[r.item.id] == "cats" for r in plain) <= 4 and "cats-00" not in [r.item.id for r in plain]
