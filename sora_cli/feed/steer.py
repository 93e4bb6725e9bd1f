"""Steering in plain language: "more space videos, fewer romantic comedies" -> facets, then per-video adjustments.

Embedding the whole sentence fails: MiniLM all but ignores "fewer", "no" and "only", so "fewer romantic comedies"
lands next to romantic comedies. So the sentence is first split, in pure Python, into facets (kind, topic):

    parse("I'm tired of sports, show me lots of cooking")
    -> Steering(facets=(Facet("fewer", "sports"), Facet("more", "cooking")))

and only each facet's *topic* is embedded and scored against the cached caption vectors (`score`). The kinds:
`more` / `fewer` add or subtract a boost in proportion to how well a caption matches; `only` pushes every
non-matching video far down; `no` hides matching videos.

Parsing rules (no model, no guessing of meaning beyond these):
- clauses split on , ; . ! ? and on the words and / or / but / while / plus;
- a clause's kind comes from cue phrases at its start ("show me", "I'm tired of", "no more", "without", "just",
  ...) or its end ("... only", "... is too much"); an explicit kind word beats a neutral verb ("show me less X"
  is fewer);
- a clause with no cue inherits the previous clause's kind ("no zombies or ghosts" is two `no` facets), except
  after "but", where a bare clause following a negative one is `more`; the first bare clause is `more`;
- filler is stripped ("videos", "clips", "stuff", "please", leading articles), intensifiers scale the weight
  ("a bit more" 0.5, "way fewer" 1.5).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sora_cli.errors import UsageError

KINDS = ("more", "fewer", "only", "no")

# Cue phrases at the start of a clause, tried longest first; None marks a neutral verb ("show me X" is more X
# unless an explicit kind word follows).
_LEAD_CUES: dict[str, str | None] = {
    # only
    "only show me": "only", "show me only": "only", "i only want": "only", "nothing but": "only",
    "only": "only", "just": "only", "exclusively": "only",
    # no
    "no more": "no", "no": "no", "not": "no", "never show me": "no", "never show": "no", "never": "no",
    "without": "no", "stop showing me": "no", "stop showing": "no", "stop": "no", "don't show me": "no",
    "dont show me": "no", "do not show me": "no", "don't show": "no", "i don't want": "no", "i dont want": "no",
    "i do not want": "no", "hide": "no", "hide all": "no", "block": "no", "remove": "no", "skip": "no",
    "ban": "no", "zero": "no", "none of": "no", "get rid of": "no", "i hate": "no", "no thanks to": "no",
    "i never want to see": "no",
    # fewer
    "less": "fewer", "fewer": "fewer", "not so many": "fewer", "not as many": "fewer", "not too many": "fewer",
    "not so much": "fewer", "not as much": "fewer", "cut down on": "fewer", "cut back on": "fewer",
    "tone down": "fewer", "tone down the": "fewer", "dial back": "fewer", "dial down": "fewer", "reduce": "fewer",
    "i'm tired of": "fewer", "im tired of": "fewer", "i am tired of": "fewer", "tired of": "fewer",
    "i'm sick of": "fewer", "im sick of": "fewer", "sick of": "fewer", "i'm bored of": "fewer",
    "bored of": "fewer", "bored with": "fewer", "i've seen enough": "fewer", "enough with": "fewer",
    "enough of": "fewer", "enough": "fewer", "too many": "fewer", "too much": "fewer", "i don't like": "fewer",
    "i dont like": "fewer", "i'm over": "fewer", "over": "fewer", "lower": "fewer", "down with": "fewer",
    # more
    "more": "more", "more of": "more", "lots of": "more", "lots more": "more", "a lot of": "more",
    "plenty of": "more", "loads of": "more", "tons of": "more", "extra": "more", "i love": "more",
    "i like": "more", "i'm into": "more", "im into": "more", "bring on": "more", "bring back": "more",
    "increase": "more", "boost": "more", "add": "more", "add more": "more", "give me more": "more",
    # neutral verbs and openers
    "show me": None, "show": None, "give me": None, "i want": None, "i want to see": None, "i'd like": None,
    "i'd like to see": None, "id like": None, "i would like": None, "i would like to see": None, "let me see": None,
    "can you show me": None, "can you": None, "could you": None, "could you show me": None, "please": None,
    "i wanna see": None, "i want some": None, "how about": None, "maybe": None, "also": None, "then": None,
    "instead": None, "rather": None, "and": None, "or": None, "but": None, "plus": None, "some": None,
    "see": None, "to see": None, "me": None, "ok": None, "okay": None, "oh": None, "so": None, "yes": None,
    "with": None, "about": None, "of": None, "the": None, "a": None, "an": None, "any": None, "all": None,
    "those": None, "these": None, "that": None, "for": None,
}
_TRAIL_CUES: dict[str, str | None] = {
    "only": "only", "only please": "only", "no thanks": "no", "not for me": "no", "please no": "no",
    "is too much": "fewer", "are too much": "fewer", "is getting old": "fewer", "are getting old": "fewer",
    "is boring": "fewer", "are boring": "fewer", "less": "fewer", "less please": "fewer", "more": "more",
    "more please": "more", "please": None, "thanks": None, "thank you": None, "in my feed": None,
    "on my feed": None, "in the feed": None, "for me": None, "anymore": None, "any more": None,
    "right now": None, "today": None, "for a while": None, "for now": None, "too": None, "as well": None,
}
_INTENSITY = {"a bit": 0.5, "a little": 0.5, "slightly": 0.5, "somewhat": 0.5, "a tad": 0.5, "way": 1.5,
              "much": 1.5, "a lot": 1.5, "lots": 1.5, "far": 1.5, "many": 1.5, "a lot more": 1.5}
_FILLER = {"videos", "video", "clips", "clip", "stuff", "content", "posts", "post", "things", "ones", "footage",
           "please", "thanks", "kind", "related", "type", "types", "sort", "sorts"}
_EDGE_WORDS = {"the", "a", "an", "of", "about", "with", "on", "some", "any", "all", "those", "these", "that",
               "to", "see", "me", "kind", "sort", "type", "like", "my", "in", "from", "for", "and", "or"}
_SPLIT = re.compile(r"[,;.!?]+|\s+(and|or|but|while|plus|whereas)\s+")


def _phrases(table: dict[str, Any]) -> list[str]:
    return sorted(table, key=lambda p: -len(p))


_LEADS, _TRAILS, _INTENSE = _phrases(_LEAD_CUES), _phrases(_TRAIL_CUES), _phrases(_INTENSITY)


@dataclass(frozen=True)
class Facet:
    """One part of a steer: a kind (more | fewer | only | no), a topic in the user's words, and a weight.

    `vector` is the topic's unit vector once `embed` has run; `weight` is the strength (intensity words, or a saved
    preference's decay)."""

    kind: str
    topic: str
    weight: float = 1.0
    vector: Any = field(default=None, compare=False, repr=False)

    def label(self) -> str:
        return f"{self.kind} {self.topic}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "topic": self.topic, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class Steering:
    sentence: str
    facets: tuple[Facet, ...]

    def to_json(self) -> str:
        return json.dumps([f.to_dict() for f in self.facets])

    def describe(self) -> str:
        return ", ".join(f.label() for f in self.facets)


def _strip_lead(words: str, table: dict[str, str | None], phrases: list[str]) -> tuple[str, str | None, bool]:
    for phrase in phrases:
        if words == phrase or words.startswith(phrase + " "):
            return words[len(phrase):].strip(), table[phrase], True
    return words, None, False


def _strip_trail(words: str) -> tuple[str, str | None, bool]:
    for phrase in _TRAILS:
        if words == phrase or words.endswith(" " + phrase):
            return words[:len(words) - len(phrase)].strip(), _TRAIL_CUES[phrase], True
    return words, None, False


def _clause(text: str) -> tuple[str | None, float, str]:
    """(explicit kind or None, weight, topic) of one clause."""
    words = " ".join(re.sub(r"[^\w'\- ]+", " ", text).split())
    kind: str | None = None
    weight = 1.0
    changed = True
    while changed and words:
        changed = False
        for phrase in _INTENSE:  # "way fewer", "a bit more": the intensity sits before the kind word
            if words.startswith(phrase + " ") and any(words[len(phrase) + 1:].startswith(k) for k in
                                                     ("more", "less", "fewer")):
                weight, words, changed = _INTENSITY[phrase], words[len(phrase):].strip(), True
                break
        words, cue, hit = _strip_lead(words, _LEAD_CUES, _LEADS)
        if hit:
            changed = True
            # a later kind word wins, except that "more" does not undo a negative or "only" ("no more X",
            # "I don't want more X", "only show me more X")
            if cue is not None and not (cue == "more" and kind in ("fewer", "no", "only")):
                kind = cue
    changed = True
    while changed and words:
        words, cue, changed = _strip_trail(words)
        if cue is not None:
            kind = cue
    kept = [w for w in words.split() if w not in _FILLER]
    while kept and kept[0] in _EDGE_WORDS:
        kept.pop(0)
    while kept and kept[-1] in _EDGE_WORDS:
        kept.pop()
    return kind, weight, " ".join(kept)


def parse(sentence: str) -> Steering:
    """Split a steering sentence into facets; UsageError when nothing in it names a topic."""
    text = sentence.replace("\u2019", "'").replace("\u2018", "'").lower()
    pieces = _SPLIT.split(text)
    facets: list[Facet] = []
    previous: str | None = None
    joiner: str | None = None
    for i, piece in enumerate(pieces):
        if i % 2 == 1:  # the captured joining word (or None for punctuation)
            joiner = piece
            continue
        if piece is None or not piece.strip():
            continue
        kind, weight, topic = _clause(piece)
        if kind is None:
            if previous is None:
                kind = "more"
            elif joiner == "but" and previous in ("fewer", "no"):
                kind = "more"
            else:
                kind = previous
        previous, joiner = kind, None
        if topic:
            facets.append(Facet(kind, topic, weight))
    if not facets:
        raise UsageError(f"no topic found in {sentence!r}: try e.g. \"more space videos, fewer horror\"")
    return Steering(sentence, tuple(facets))


def facets_from_json(text: str, weight: float = 1.0) -> tuple[Facet, ...]:
    """Facets saved with `Steering.to_json`, each weight multiplied by `weight`."""
    return tuple(Facet(d["kind"], d["topic"], float(d.get("weight", 1.0)) * weight) for d in json.loads(text))


# -- scoring ------------------------------------------------------------------------------------------------------
# Every constant below was chosen looking at bench/feed.py's own data (there is no holdout set yet), so its figures
# are optimistic for other captions and phrasings.
# Calibrated on tests/data/feed (224 captions, 14 themes, 32 topic phrasings): a bare topic ("space", "scary
# movies") separates its theme better than "a video about <topic>" or "<topic> videos" (mean AUC 0.957 against
# 0.943 and 0.939), and raw cosines sit low and shift with the topic (medians 0.03-0.12), so each facet's
# similarities are standardised over the videos being ranked: z = (s - median) / (1.4826 * MAD). A theme's own
# captions reach z 2-5, the top 3 % of the others z ~2; the match ramps linearly from Z_LO to Z_HI, and a `no`
# hides only full matches (z >= Z_HI): at z >= 3.0 the bench's `no` sentences hid 51 captions of their themes and
# 14 of others, at 3.5 41 and 5 (the rest are still buried by the -NO term).
Z_LO, Z_HI = 1.0, 3.5
MIN_SCALE = 0.03  # a near-uniform feed (all cats) must not turn tiny differences into huge z
REFERENCE = (0.07, 0.06)  # median and scale of a topic's cosines over a mixed set, used below MIN_ITEMS
MIN_ITEMS = 30
EXPAND, EXPAND_WEIGHT = 5, 1.0
ABS_LO, ABS_HI = 0.05, 0.15
# Score units as in rank.py: a followed author 1.5, freshness up to 0.6, activity up to 0.4. A full match of a
# `more` topic ties with a follow (1.0 gave NDCG@10 0.75 on the bench, 1.5 gave 0.81); `only` and `no` outweigh
# everything else together (2.5).
MORE, FEWER, NO, ONLY = 1.5, 1.5, 5.0, 4.0


@dataclass
class Adjustments:
    """Per-video score changes from a set of facets, with what each facet matched (for "why" strings)."""

    boost: Any  # float [N], added to the ranking score
    hidden: Any  # bool [N], removed from the feed ("no" facets that match clearly)
    match: Any  # float [N, F], 0..1 match of each video with each facet
    facets: tuple[Facet, ...]

    @property
    def only(self) -> bool:
        return any(f.kind == "only" and f.weight >= 0.5 for f in self.facets)


def topic_texts(facets: Sequence[Facet]) -> list[str]:
    return [f.topic for f in facets]


def embed(facets: Sequence[Facet], encoder: Any, cache_dir: Path | None = None) -> tuple[Facet, ...]:
    """The facets with their topic vectors (cached on disk by text when `cache_dir` is given)."""
    from sora_cli.safety.embed import cached_encode

    missing = [f for f in facets if f.vector is None]
    if not missing:
        return tuple(facets)
    vectors = dict(zip(topic_texts(missing), cached_encode(encoder, topic_texts(missing), cache_dir), strict=True))
    return tuple(f if f.vector is not None else replace(f, vector=vectors[f.topic]) for f in facets)


def matches(facets: Sequence[Facet], caption_vectors: Any) -> Any:
    """[N, F] match in 0..1 of each caption with each facet's topic (robustly standardised cosine, ramped)."""
    import numpy as np

    if any(f.vector is None for f in facets):
        raise ValueError("facets need their topic vectors: call steer.embed(facets, encoder) first")
    if not facets or len(caption_vectors) == 0:
        return np.zeros((len(caption_vectors), len(facets)), dtype=np.float32)
    topics = np.stack([np.asarray(f.vector, dtype=np.float32) for f in facets])
    sims = caption_vectors @ topics.T
    if len(sims) >= MIN_ITEMS:
        z = _robust_z(_expand(sims, topics, caption_vectors))
    else:  # too few videos for a median and MAD to mean anything
        z = (sims - REFERENCE[0]) / REFERENCE[1]
    # z is relative: in a feed of cat videos the cat nearest to "sharks" stands out. The raw cosine must also
    # reach ABS_HI for a full match (the themes' own captions: median 0.16-0.46; unrelated: median 0.07)
    gate = np.clip((sims - ABS_LO) / (ABS_HI - ABS_LO), 0.0, 1.0)
    return (np.clip((z - Z_LO) / (Z_HI - Z_LO), 0.0, 1.0) * gate).astype(np.float32)


def _robust_z(sims: Any) -> Any:
    import numpy as np

    centre = np.median(sims, axis=0)
    return (sims - centre) / np.maximum(1.4826 * np.median(np.abs(sims - centre), axis=0), MIN_SCALE)


def _expand(sims: Any, topics: Any, caption_vectors: Any) -> Any:
    """Pseudo-relevance feedback: move each topic towards the mean of its EXPAND best captions and average the two
    similarities, so "horror" also reaches "a cursed videotape ... a pale face appears" (bench: NDCG@10 0.80 ->
    0.83, avoided themes' mean rank 202 -> 208). Only captions that already match clearly (z >= 2) may pull, and
    at least two of them, so a topic absent from the feed ("no sharks" among cat videos) does not drift onto
    whatever happens to be nearest and hide it."""
    import numpy as np

    z = _robust_z(sims)
    best = np.argpartition(-sims, EXPAND - 1, axis=0)[:EXPAND]  # [EXPAND, F]
    clear = np.take_along_axis(z, best, axis=0) >= 2.0
    use = clear.sum(axis=0) >= 2
    if not use.any():
        return sims
    pulled = (caption_vectors[best] * clear[..., None]).sum(axis=0) / np.maximum(clear.sum(axis=0), 1)[:, None]
    moved = topics + EXPAND_WEIGHT * pulled  # [F, 384]
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    return np.where(use, 0.5 * (sims + caption_vectors @ moved.T), sims)


def score(facets: Sequence[Facet] | Steering, caption_vectors: Any, encoder: Any = None,
          cache_dir: Path | None = None) -> Adjustments:
    """Per-video adjustments: more/fewer add/subtract up to weight x 1.5, `no` buries (-5) and hides clear matches
    (while its weight is >= 0.5), `only` pushes non-matches down by 4 and lifts matches like `more`.

    Within one kind the strongest facet counts (a caption about dragons *and* wizards is not boosted twice);
    across kinds the terms add, so "more X, fewer Y" on a caption that is both nets out."""
    import numpy as np

    facets = tuple(facets.facets if isinstance(facets, Steering) else facets)
    if encoder is not None:
        facets = embed(facets, encoder, cache_dir)
    n = len(caption_vectors)
    match = matches(facets, caption_vectors)
    boost = np.zeros(n, dtype=np.float32)
    hidden = np.zeros(n, dtype=bool)
    weights = np.array([f.weight for f in facets], dtype=np.float32)
    for kind in KINDS:
        cols = [i for i, f in enumerate(facets) if f.kind == kind]
        if not cols:
            continue
        strength = (match[:, cols] * weights[cols]).max(axis=1)
        if kind == "more":
            boost += MORE * strength
        elif kind == "fewer":
            boost -= FEWER * strength
        elif kind == "no":
            # squared: a -5 on a linear ramp buried whole neighbouring themes ("no horror" cost dance videos 0.5
            # on average); m^2 keeps the burial for clear matches and spares the z 1.5-2.5 fringe
            boost -= NO * (match[:, cols] ** 2 * weights[cols]).max(axis=1)
            clear = match[:, [i for i in cols if weights[i] >= 0.5]]
            if clear.shape[1]:
                hidden |= clear.max(axis=1) >= 1.0
        else:  # only: "cats and dogs only" keeps what matches any of them
            best = match[:, cols].max(axis=1)
            boost += MORE * strength - ONLY * float(weights[cols].max()) * (1.0 - best)
    return Adjustments(boost, hidden, match, facets)
