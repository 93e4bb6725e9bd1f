"""One feed browse, end to end, for the CLI and the server: encoder, cached caption vectors, facets, ranking.

    encoder = load_encoder()                                   # once per process (MiniLM, in numpy)
    ranked = browse(items, encoder=encoder, prefs=Preferences(path), steer="more space, fewer horror",
                    now=time.time(), follows={"ana"}, cache_dir=paths.cache_dir / "feed")

Caption vectors go through `cached_encode`, so a browse encodes only captions it has never seen; the steer's topics
are a handful of short texts (~5 ms each on one thread when new, cached after).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sora_cli.feed.prefs import Preferences
from sora_cli.feed.rank import FeedItem, Ranked, rank
from sora_cli.feed.steer import Facet, embed, parse


def load_encoder(device: str = "cpu") -> Any:
    """MiniLM (numpy on memory-mapped weights: it may load beside a video pipeline's load)."""
    from sora_cli.safety.embed import MiniLM

    return MiniLM(device)


def caption_vectors(encoder: Any, captions: Sequence[str], cache_dir: Path | None) -> Any:
    """[N, 384] unit vectors of `captions`, encoded once and read from `cache_dir` after."""
    from sora_cli.safety.embed import cached_encode

    return cached_encode(encoder, list(captions), cache_dir)


def facets_for(encoder: Any, *, prefs: Preferences | None, steer: str | None, now: float,
               cache_dir: Path | None = None) -> tuple[Facet, ...]:
    """This browse's --steer (full weight) plus the saved preferences (decayed), embedded."""
    facets: list[Facet] = list(parse(steer).facets) if steer else []
    if prefs is not None:
        facets += prefs.facets(now=now)
    return embed(facets, encoder, cache_dir) if facets else ()


def browse(items: Sequence[FeedItem], *, encoder: Any, now: float, prefs: Preferences | None = None,
           steer: str | None = None, follows: Iterable[str] = (), cache_dir: Path | None = None,
           limit: int | None = 50, personalised: bool = True) -> list[Ranked]:
    """Rank `items` for one user; `personalised=False` ignores --steer and saved preferences (not hides)."""
    facets: tuple[Facet, ...] = ()
    if personalised:
        facets = tuple(parse(steer).facets) if steer else ()
        facets += prefs.facets(now=now) if prefs is not None else ()
    # one read of the disk cache for captions and topics together (it is one file; reading it is most of a warm
    # browse of 10,000 videos)
    captions = [it.caption for it in items]
    both = caption_vectors(encoder, captions + [f.topic for f in facets], cache_dir)
    vectors = both[:len(captions)]
    facets = tuple(replace(f, vector=v) for f, v in zip(facets, both[len(captions):], strict=True))
    hidden = prefs.hidden() if prefs is not None else set()
    return rank(items, now=now, vectors=vectors, steering=facets, follows=follows, hidden=hidden, limit=limit,
                personalised=personalised)
