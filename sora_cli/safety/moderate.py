"""Prompt moderation: hard rules, the rights registry, then a MiniLM classifier taught by examples and anchors.

    moderator = Moderator.from_paths(paths)        # reads the policy and rights files; loads no model
    moderator.guard(prompt, ctx, model=False)       # rules + rights, < 1 ms: before anything loads
    moderator.start_loading()                       # MiniLM loads in a thread while the pipeline loads
    moderator.guard(prompt, ctx)                    # all layers (waits for the model); raises PolicyRefusal

`check` returns a Decision and never raises for a refusal; `guard` logs refusals, rephrase requests and
admin overrides to the safety log and raises PolicyRefusal (exit 5) for anything not allowed.

The model layer: a logistic-regression classifier over MiniLM vectors, trained when the model loads (and cached)
on every category's example sentences against all benign anchors, scores the whole prompt and each of its clauses
(and, for long prompts, overlapping 8-word windows), so a harmless clause cannot dilute a harmful one. A category
refuses when the classifier's probability that the fragment is unsafe (the category being the likeliest) reaches
its `threshold` and the fragment's nearest example of that category trails its nearest anchor by no more than
-`margin` (cosine). When no rule refuses the prompt as typed and the model is loaded, one-letter slips in words the
tokenizer does not know ("decapatated") are mended towards the rules' one-word patterns and the rules run again.
`Decision.score` is that probability for a model decision, `margin` the example's lead over the anchor.

To generalise past the prompts it was tuned on: the rules also run on a deobfuscated copy ("s3x", "p o r n");
misspelt policy phrases are mended whole ("hary poter"); violence, hate and extremism hard-rule hits in a reporting
context without endorsement (documentary, history, museum; see SOFTENED) are left to the model; camera jargon is
struck from what the model reads; and a prompt with fewer than MIN_CONTENT content words skips the model layer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.errors import PolicyRefusal
from sora_cli.safety.log import SafetyLog
from sora_cli.safety.policy import LOCKED, Policy, admin_policy_path, default_policy_path, load_policy
from sora_cli.safety.rights import RightsRegistry, load_rights
from sora_cli.safety.rules import (
    Hit,
    Rules,
    Speller,
    deobfuscate,
    normalize,
    trigger_phrases,
    trigger_words,
    unaccented,
)

COPYRIGHT = "copyrighted_character"
STRENGTH = 16.0  # the classifier's inverse L2 penalty (scikit-learn's C), chosen by cross-validation on the policy
_CLAUSE = re.compile(r"\s*(?:[,;:.!?()\[\]]+|\s[-–—]+\s|\b(?:and then|then|while|before|after|until|so that|but|"
                     r"whereas|as soon as|when)\b)\s*", re.IGNORECASE)
# A reporting context (documentary, history lesson, museum, news report: the policy's `reporting_context` terms)
# with no endorsement in it (`endorsement` terms: glorify, recruit, how to, ...) turns these categories' hard-rule hits
# over to the model layer, which has anchors for exactly such prompts: "a documentary on the rwandan genocide".
# A support context (a helpline, a support group, recovery) does the same for self-harm hits: "a PSA: if you're
# thinking about suicide, call 988". A fact-check or debunking context does it for deception ("how deepfakes are
# spotted"); a news context does not, as a fake news broadcast is itself the deception.
REPORTING, SUPPORT, DEBUNKING = "reporting_context", "support_context", "debunking_context"
ENDORSING, JARGON = "endorsement", "film_jargon"
# the user's own invention ("my original character"): the copyrighted_character model layer does not read such a
# prompt (a named character is still refused by the rules)
ORIGINAL = "original_context"
SOFTENED = {"violence": REPORTING, "hate": REPORTING, "extremism": REPORTING, "deception": DEBUNKING,
            "self_harm": SUPPORT}
# where the category's harm words are part of the context itself, they are no cue for a model-only refusal: "suicide"
# in a prevention campaign ("documentary style" is no such context: it is a common wrapper for hateful prompts)
UNCUED_IN_CONTEXT = {"self_harm", "deception"}
# Two signals before a model-only refusal. The classifier alone cannot tell a description from a named character or
# a living artist: copyrighted_character and artist_music count in the model layer only with a lexical cue (the
# category's `model_requires` term set, or a name from the term set its `near` rules start from: a franchise, an
# artist; names are mended for slips first). In the other categories a model-only REFUSE needs a word of the
# category's `harm_<category>` lexicon, or a probability of at least UNCUED; short of both, a prompt that reaches the
# category's threshold is asked to be rephrased and one below it is allowed (no grey zone without a lexicon word).
# A category that escalates to the locked one (sexual plus a minor term) is never held back by this. UNCUED, like the
# categories' thresholds, was chosen by leave-one-split-out over the ten labelled splits (bench/moderation.py --cv:
# every left-out fold picked it).
UNCUED = 0.97
LEXICON = "harm_{}"
MIN_CONTENT = 2  # fewer content words than this ("x", "again", "wait"): the model layer has nothing to read
_STOP = frozenset("a an the of in on at to and or with by for from into onto is are was be as it its this that "
                  "his her their my your our while very some".split())


@dataclass(frozen=True)
class Context:
    """Who asks and how: used by admin overrides, the rights registry and the log."""

    source: str = "cli"  # cli | batch | server
    user: str | None = None  # the requester's @handle
    server: str | None = None  # the server's name; None is "local"
    use: str | None = None  # declared use for copyrighted characters: "parody", "fan-art", ...
    commercial: bool = False
    today: date | None = None


@dataclass(frozen=True)
class Decision:
    verdict: str  # "allow" | "refuse" | "rephrase"
    message: str
    category: str | None = None
    label: str | None = None
    layer: str | None = None  # "rule" | "model" | "rights"
    triggers: tuple[str, ...] = ()
    score: float | None = None  # model: the classifier's probability that the prompt (or a clause) is unsafe
    margin: float | None = None  # model: cosine lead of the nearest example over the nearest benign anchor
    nearest: str | None = None  # the policy example the model found closest
    reason: str | None = None  # the rights registry's answer
    overridden: tuple[str, ...] = ()  # categories an admin override let through
    rights: tuple[str, ...] = ()  # characters let through by an opt-in, with its scope
    model_checked: bool = False
    policy: str = ""  # the policy digest

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, **asdict(self)} | {
            "triggers": list(self.triggers), "overridden": list(self.overridden), "rights": list(self.rights)}


@dataclass
class _Model:
    encoder: Any
    vectors: Any  # [N, 384]
    sentences: list[str]
    examples: dict[str, Any] = field(default_factory=dict)  # category -> indices
    anchors: Any = None  # indices of every benign anchor (the global ones and each category's)
    classes: list[str] = field(default_factory=list)  # the classifier's classes: "benign", then the categories
    weights: Any = None  # [384, classes]
    biases: Any = None  # [classes]
    speller: Speller | None = None


def fragments(text: str, window: int = 8, stride: int = 4, most: int = 16) -> list[str]:
    """The prompt, its clauses of three words or more and, in a clause (or an unpunctuated prompt) past 16 words,
    overlapping `window`-word spans. Short clauses get no windows: they are read whole already, and each fragment
    costs a forward pass (a long punctuated prompt went from 13 fragments to ~7)."""
    out = [text]
    clauses = [c for c in _CLAUSE.split(text) if c and len(c.split()) >= 3]
    if len(clauses) > 1:
        out += clauses
    for part in clauses if len(clauses) > 1 else [text]:
        words = part.split()
        if len(words) > 16:
            out += [" ".join(words[i:i + window]) for i in range(0, len(words) - window + stride, stride)]
    return list(dict.fromkeys(out))[:most]


class Moderator:
    def __init__(self, policy: Policy, rights: RightsRegistry | None = None, *, cache_dir: Path | None = None,
                 log: SafetyLog | None = None, device: str = "cpu", encoder: Any = None, rules: Rules | None = None):
        self.policy = policy
        self.rights = rights or RightsRegistry()
        self.rules = rules if rules is not None and rules.policy is policy else Rules(policy)
        self.cache_dir = cache_dir
        self.log = log
        self.device = device
        self.encoder = encoder  # a loaded MiniLM to share (one per process is enough), or None to load one
        self._model: _Model | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_paths(cls, paths: Paths | None = None, environ: dict[str, str] | None = None) -> Moderator:
        paths = paths or Paths.from_env(environ)
        rules = load_rules(paths, environ, paths.cache_dir / "safety")
        policy = rules.policy
        rights = load_rights(paths, environ, known={c.name for c in policy.characters})
        return cls(policy, rights, cache_dir=paths.cache_dir / "safety", log=SafetyLog(paths.data_dir / "safety.db"),
                   rules=rules)

    # -- the model, loaded lazily -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def start_loading(self) -> None:
        """Load MiniLM in a background thread (e.g. while the video pipeline loads); errors surface at `check`."""
        with self._lock:
            if self._model is None and self._thread is None:
                self._thread = threading.Thread(target=self._load_quietly, name="sora-moderation", daemon=True)
                self._thread.start()

    def warm_up(self) -> None:
        """Load MiniLM now (or wait for the background load) and raise its error, if any."""
        self._ensure_model()

    def _load_quietly(self) -> None:
        try:
            self._build()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that asks for the model
            self._error = exc

    def _build(self) -> None:
        import numpy as np

        from sora_cli.safety.embed import MiniLM, cached_classifier, cached_encode

        encoder = self.encoder or MiniLM(self.device)
        sentences: list[str] = []
        index: dict[str, int] = {}

        def ids(texts: tuple[str, ...]) -> Any:
            for t in texts:
                if t not in index:
                    index[t] = len(sentences)
                    sentences.append(t)
            return np.array([index[t] for t in texts], dtype=np.int64)

        model = _Model(encoder, None, sentences)
        anchors = list(self.policy.anchors)
        for cat in self.policy.categories.values():
            model.examples[cat.name] = ids(cat.examples)
            anchors += cat.anchors
        model.anchors = ids(tuple(anchors))
        model.vectors = cached_encode(encoder, sentences, self.cache_dir)
        model.classes = ["benign", *(c for c, ex in model.examples.items() if len(ex))]
        labels = np.zeros(len(sentences), dtype=np.int64)  # an anchor that is also an example counts as the example
        for k, name in enumerate(model.classes[1:], 1):
            labels[model.examples[name]] = k
        rows = np.unique(np.concatenate([model.anchors, *model.examples.values()]))
        if len(model.classes) > 1 and len(model.anchors):
            model.weights, model.biases = cached_classifier(model.vectors[rows], labels[rows].tolist(),
                                                            len(model.classes), STRENGTH, self.cache_dir)
        if hasattr(encoder, "vocabulary"):
            words, stems = trigger_words(self.policy)
            # a word the shipped benign phrases spell out ("emoticons") is a word, not a slip of a rule's ("erotic")
            benign = {w for phrase in self.policy.locked_unless for w in re.findall(r"[^\W\d_]{4,}", phrase)}
            model.speller = Speller(words, stems, encoder.vocabulary() | benign, shortest=5,
                                    phrases=trigger_phrases(self.policy))
        self._unread_words  # noqa: B018 - compiled here, in the background, not at the first check
        self.encoder = encoder
        self._model = model

    def _ensure_model(self) -> _Model:
        self.start_loading()
        thread = self._thread
        if thread is not None:
            thread.join()
        if self._model is None:
            error, self._error, self._thread = self._error, None, None  # let a later call retry
            raise error or RuntimeError("the moderation model did not load")
        return self._model

    # -- checks ---------------------------------------------------------------------------------------------------
    def check(self, text: str, context: Context | None = None, *, model: bool = True) -> Decision:
        """The verdict on a prompt; `model=False` runs only the rules and the rights registry (instant).

        With `model=False` a softened hit (see SOFTENED) is left to the model pass that follows, so it allows.
        """
        ctx = context or Context()
        norm = normalize(text)
        plain = deobfuscate(self.rules.unmask(text))  # "s3x", "p o r n", "s*x": scanned besides the text as typed
        reads = _read(text, norm, plain)
        hits, allowed_rights = self._rule_hits(norm, ctx, plain)
        speller = None
        if model and not any(h.verdict == "refuse" for h in hits):
            # no rule refuses as typed: mend slips in words MiniLM does not know ("sucidal") and run the rules again
            speller = self._ensure_model().speller
            mended = speller.correct(plain) if speller is not None else plain
            if mended != norm:
                plain = mended
                hits, allowed_rights = self._rule_hits(norm, ctx, plain)
        hits = self._soften(hits, self.rules.without_negated(plain))  # "no gore" is no endorsement
        skip = {COPYRIGHT} if self.rules.term_matches(ORIGINAL, plain) else set()
        if allowed_rights:  # a named, opted-in character: the rights registry has the last word on it
            skip.add(COPYRIGHT)
            hits = [h for h in hits if h.category != COPYRIGHT or h.layer == "rights"]
        overridden: list[str] = []
        extra = {"rights": tuple(allowed_rights), "policy": self.policy.digest}

        def permitted(category: str) -> bool:
            if self.policy.override_for(category, ctx.user, ctx.source) is None:
                return False
            overridden.append(category)
            return True

        order = list(self.policy.categories)
        for hit in sorted((h for h in hits if h.verdict == "refuse"),
                          key=lambda h: (order.index(h.category), h.layer != "rights")):
            if not permitted(hit.category):
                return self._decide("refuse", hit.category, hit.layer, hit.triggers, overridden=overridden,
                                    reason=hit.reason or None, **extra)
        greys = [h for h in hits if h.verdict == "rephrase" and not permitted(h.category)]
        if model and self._has_content(self._unread(plain), speller):
            found = self._model_layer(reads, plain, permitted, skip)
            if found is not None and found.verdict == "refuse":
                return replace_extra(found, overridden, extra)
            if found is not None and not greys:
                return replace_extra(found, overridden, extra)
        if greys:
            hit = greys[0]
            return self._decide("rephrase", hit.category, "rule", hit.triggers, overridden=overridden, **extra)
        message = "allowed" + (f" (admin override: {', '.join(dict.fromkeys(overridden))})" if overridden else "")
        return Decision("allow", message, overridden=tuple(dict.fromkeys(overridden)), model_checked=model, **extra)

    def _rule_hits(self, norm: str, ctx: Context, plain: str | None = None) -> tuple[list[Hit], list[str]]:
        """The rule layer's hits on `norm` and on its deobfuscated or mended form `plain` (a category's refusal in
        either counts), plus a "rights" refusal for each named character without an opt-in."""
        hits = self.rules.scan(norm)
        named = dict((ch.name, (ch, said)) for ch, said in self.rules.characters_named(norm))
        if plain is not None and plain != norm:
            refused = {h.category for h in hits if h.verdict == "refuse"}
            for hit in self.rules.scan(plain):
                if hit.verdict == "refuse" and hit.category not in refused:
                    hits = [h for h in hits if h.category != hit.category] + [hit]
            for ch, said in self.rules.characters_named(plain):
                named.setdefault(ch.name, (ch, said))
        allowed_rights: list[str] = []
        for character, said in named.values():
            verdict = self.rights.check(character.name, character.holder, use=ctx.use, commercial=ctx.commercial,
                                        user=ctx.user, server=ctx.server, today=ctx.today)
            if verdict.allowed:
                allowed_rights.append(f"{character.name} ({verdict.reason})")
            else:
                hits.append(Hit(COPYRIGHT, "refuse", (said,), "rights", verdict.reason))
        return hits, allowed_rights

    def _in_context(self, norm: str) -> set[str]:
        """The SOFTENED categories whose context the prompt sets (reporting, support or debunking), without
        endorsement."""
        if self.rules.term_matches(ENDORSING, norm):
            return set()
        return {cat for cat, context in SOFTENED.items() if self.rules.term_matches(context, norm)}

    def _soften(self, hits: list[Hit], norm: str) -> list[Hit]:
        """Drop SOFTENED categories' rule hits in their context without endorsement, when no other category
        refuses: the model layer judges such a prompt ("a history documentary about the kkk")."""
        soft = [h for h in hits if h.verdict == "refuse" and h.layer == "rule" and h.category in SOFTENED]
        if not soft or any(h.verdict == "refuse" and h not in soft for h in hits):
            return hits
        context = self._in_context(norm)
        return [h for h in hits if h not in soft or h.category not in context]

    @cached_property
    def _unread_words(self) -> re.Pattern[str] | None:
        """Camera and editing words, negated harm ("no gore") and the shipped global `unless` phrases ("killed it",
        "the bomb" of a pizza): struck from what the model reads (compiled on first use, in the background load, not
        before the pipeline's). Only the shipped `unless`, the one the locked category sees: the reading is shared."""
        return _as_typed(self.policy.terms.get(JARGON, ()) + self.policy.negated + self.policy.locked_unless)

    def _unread(self, text: str) -> str:
        """The text the model layer reads: without camera jargon, negated harm ("no gore") and benign phrases."""
        return self._unread_words.sub(" ", text).strip() if self._unread_words is not None else text

    def _has_content(self, norm: str, speller: Speller | None) -> bool:
        """At least MIN_CONTENT content words, one of them a word MiniLM knows: a one-letter prompt or "again" is
        not a sentence the classifier can judge (it reads "x" as a character's name)."""
        words = [w for w in norm.split() if w not in _STOP and len(w) > 1 and not w.isdigit()]
        known = speller.is_known if speller is not None else (lambda w: True)
        return len(words) >= MIN_CONTENT and any(known(w) for w in words)

    def guard(self, text: str, context: Context | None = None, *, model: bool = True) -> Decision:
        """`check`, then log what is not plainly allowed and raise PolicyRefusal unless it is allowed."""
        ctx = context or Context()
        decision = self.check(text, ctx, model=model)
        if self.log is not None and (not decision.allowed or decision.overridden):
            self.log.record(decision, text, ctx, store_prompt=self.policy.log_prompts)
        if not decision.allowed:
            raise PolicyRefusal(decision.message)
        return decision

    def fragment_scores(self, text: str) -> list[tuple[str, float, float]]:
        """For the bench's cross-validation of thresholds: per fragment the model layer reads, its likeliest category,
        the probability that it is unsafe, that category's example-over-anchor lead and whether the prompt has a word
        of its harm lexicon ([] where no model runs)."""
        m = self._ensure_model()
        norm, plain = normalize(text), deobfuscate(text)
        mended = m.speller.correct(plain) if m.speller is not None else plain
        if m.weights is None or not self._has_content(self._unread(mended), m.speller):
            return []
        _, _, probs, _, _, lead, _ = self._scores(_read(text, norm, plain), mended, set())
        top = probs[:, 1:].argmax(1)
        lexical = self._lexical(mended)
        return [(m.classes[int(k) + 1], float(probs[f, 1:].sum()), float(lead[f, k]), lexical[m.classes[int(k) + 1]])
                for f, k in enumerate(top)]

    def _scores(self, text: str, norm: str, skip: set[str]) -> tuple[Any, ...]:
        """The model layer's reading of a prompt: fragments, their encodings, class probabilities (a category that
        may not count handed to the one it escalates from), similarities, best anchor, each category's lead."""
        import numpy as np

        m = self._ensure_model()
        text = self._unread(text) or text
        parts = fragments(text)
        encoded = m.encoder.encode_words_batch(parts)
        vecs = np.stack([v for v, _, _ in encoded])
        logits = vecs @ m.weights + m.biases
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        sims = vecs @ m.vectors.T
        anchor_best = sims[:, m.anchors].max(1) if len(m.anchors) else np.full(len(parts), -1.0)
        cats = self.policy.categories
        # where a category's model layer may not count (a `model_requires` term set the prompt lacks), its share goes
        # to the category it escalates from (`minors_sexual` -> `sexual`), else to no category
        moved = {}
        for k, name in enumerate(m.classes[1:], 1):
            cat = cats[name]
            if name in skip:
                moved[k] = None
            elif cat.model_requires and not self._cued(cat, norm):
                source = next((src for src, _ in cat.escalate if src in m.classes and src not in skip), None)
                moved[k] = m.classes.index(source) if source else None
        for k, to in moved.items():
            if to is not None:
                probs[:, to] += probs[:, k]
            probs[:, k] = 0.0
        examples_best = np.stack([sims[:, m.examples[name]].max(1) for name in m.classes[1:]], 1)  # [F, classes-1]
        return parts, encoded, probs, sims, anchor_best, examples_best - anchor_best[:, None], moved

    def _model_layer(self, text: str, norm: str, permitted: Any, skip: set[str]) -> Decision | None:
        import numpy as np

        m = self._ensure_model()
        if m.weights is None:
            return None
        parts, encoded, probs, sims, anchor_best, lead, moved = self._scores(text, norm, skip)
        cats = self.policy.categories
        thresholds = np.array([[cats[n].threshold, cats[n].margin, cats[n].grey, cats[n].grey_margin]
                               for n in m.classes[1:]])
        dropped: set[int] = set(moved)
        lexical = self._lexical(norm)
        sure = np.array([1.0 if lexical[n] else 0.0 for n in m.classes[1:]])  # refusing needs a cue or UNCUED
        while True:
            live = np.array([k not in dropped for k in range(1, len(m.classes))])
            if not live.any():
                return None
            shares_ = np.where(live, probs[:, 1:], 0.0)
            top = shares_.argmax(1)  # per fragment, the likeliest live category
            rows = np.arange(len(parts))
            p, ld, lim = shares_.sum(1), lead[rows, top], thresholds[top]
            refuse = (p >= lim[:, 0]) & (ld >= lim[:, 1]) & ((sure[top] > 0) | (p >= UNCUED))
            grey = (p >= lim[:, 2]) & (ld >= lim[:, 3]) & ((sure[top] > 0) | (p >= lim[:, 0]))
            excess = np.where(refuse, 1.0 + p - lim[:, 0], np.where(grey, p - lim[:, 2], -1.0))
            f = int(excess.argmax())
            if excess[f] < 0:
                return None
            verdict, k = ("refuse" if refuse[f] else "rephrase"), int(top[f]) + 1
            found = name = m.classes[k]
            escalated = self._escalate(name, norm)
            named: tuple[str, ...] = ()
            if escalated is not None:
                verdict, name, named = "refuse", escalated[0], escalated[1]
            if not permitted(name):
                break
            dropped.add(k)  # overridden for this requester: look again without that category
            if escalated is not None and escalated[0] in m.classes:
                dropped.add(m.classes.index(escalated[0]))
        vec, words, shares = encoded[f]
        i = int(m.examples[found][np.argmax(sims[f, m.examples[found]])])
        # each word's share of the classifier's logit for the category against "benign"
        direction = m.weights[:, k] - m.weights[:, 0]
        ranked = sorted(((float(shares[w] @ direction), word) for w, word in enumerate(words)
                         if word.casefold() not in _STOP and len(word) > 1), reverse=True)
        picked = [w for c, w in ranked[:3] if c > 0] or [w for _, w in ranked[:1]]
        score = float(p[f])
        return self._decide(verdict, name, "model", tuple(dict.fromkeys(named + tuple(picked))),
                            score=round(score, 3), margin=round(float(sims[f, i] - anchor_best[f]), 3),
                            nearest=m.sentences[i])

    def _cued(self, cat: Any, norm: str) -> bool:
        """The category's `model_requires` term set, or a name of the term set its first `near` rule starts from."""
        sets = [cat.model_requires] + [n.first for n in cat.near[:1]]
        return any(self.rules.term_matches(s, norm) for s in sets if s)

    def _lexical(self, norm: str) -> dict[str, bool]:
        """Per category: does the prompt use a word of its harm lexicon or of the lexicon of a category it escalates
        from (True when the policy has none for it, or when a hit in it would escalate: "sexual" beside a minor term
        is always judged in full). A word inside a benign phrase of the global list does not count ("sex ed"), nor,
        in the categories of UNCUED_IN_CONTEXT, a word in the category's context: "suicide" in a prevention campaign."""
        context = self._in_context(self.rules.without_negated(norm)) & UNCUED_IN_CONTEXT
        plain = {locked: self.rules.without_benign(norm, locked) for locked in (False, True)}
        cats, terms = self.policy.categories, self.policy.terms

        def cued(name: str) -> bool:  # its own lexicon, or that of a category it escalates from (sexual, for minors)
            sets = [LEXICON.format(n) for n in (name, *(source for source, _ in cats[name].escalate))]
            return LEXICON.format(name) not in terms or any(
                self.rules.term_matches(s, plain[name == LOCKED]) for s in sets if s in terms)

        return {name: self._escalate(name, norm) is not None or (name not in context and cued(name)) for name in cats}

    def _escalate(self, category: str, norm: str) -> tuple[str, tuple[str, ...]] | None:
        """A model hit in e.g. `sexual` plus a `minor` term is a `minors_sexual` refusal (the policy's escalate)."""
        for cat in self.policy.categories.values():
            for source, term in cat.escalate:
                if source == category and (words := self.rules.term_matches(term, norm)):
                    return cat.name, tuple(words[:2])
        return None

    def _decide(self, verdict: str, category: str, layer: str, triggers: tuple[str, ...], *,
                overridden: list[str] | None = None, rights: tuple[str, ...] = (), policy: str = "",
                **scores: Any) -> Decision:
        cat = self.policy.categories.get(category)
        label = cat.label if cat else category
        words = ", ".join(f'"{t}"' for t in triggers) or "no single word"
        if verdict == "refuse":
            message = f"refused by policy: {label} ({layer}: {words})"
            if scores.get("reason"):
                message += f": {scores['reason']}"
            if category == LOCKED:
                message += "; this can never be overridden"
        else:
            message = f"please rephrase: the prompt is close to the policy's limit on {label} ({layer}: {words})"
        return Decision(verdict, message, category, label, layer, tuple(triggers), overridden=tuple(
            dict.fromkeys(overridden or ())), rights=rights, model_checked=layer == "model", policy=policy, **scores)


def load_rules(paths: Paths, environ: dict[str, str] | None, cache_dir: Path | None) -> Rules:
    """The active policy's compiled rules, kept as a pickle in `cache_dir` (the user's own cache folder) while the
    policy files and the code that reads them are unchanged: parsing the 9,000-line TOML and indexing its phrases
    takes ~0.3 s, the pickle loads in ~0.03 s. The cache is only an accelerator: any trouble with it and the files
    are read."""
    import hashlib
    import os
    import pickle
    import sys

    from sora_cli.safety import policy as policy_module
    from sora_cli.safety import rules as rules_module

    default, admin = default_policy_path(), admin_policy_path(paths, environ)
    sources = [default, *([admin] if admin else []), Path(policy_module.__file__), Path(rules_module.__file__)]
    try:
        stamps = [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in sources]
    except OSError:
        stamps = None
    key = hashlib.sha256(repr((stamps, sys.version_info[:2])).encode()).hexdigest()[:20]
    cached = cache_dir / f"rules-{key}.pickle" if cache_dir is not None and stamps is not None else None
    if cached is not None and cached.is_file():
        try:
            with cached.open("rb") as fh:
                rules = pickle.load(fh)
            if isinstance(rules, Rules):
                return rules
        except Exception:  # noqa: BLE001 - a stale or broken cache is rebuilt
            pass
    rules = Rules(load_policy(paths, environ))
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, cached)
            for old in cached.parent.glob("rules-*.pickle"):
                if old != cached:
                    old.unlink(missing_ok=True)
        except OSError:
            pass
    return rules


def _read(text: str, norm: str, plain: str) -> str:
    """What the model layer reads: the prompt without its accents (MiniLM's uncased tokenizer drops them too, and the
    benign phrases, written without them, are then found in it: "fără scene"), or its deobfuscated form where that
    differs from the normalised one ("s3x")."""
    return unaccented(text) if plain == norm else plain


def _as_typed(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Phrases written for normalised text (single spaces, lower case), matched in a prompt as typed (less its accents
    and Indic vowel signs: `unaccented`)."""
    if not phrases:
        return None
    spaced = ("(?:" + t.replace(" ", r"[\W_]+") + ")" for t in phrases)
    return re.compile(r"(?<!\w)(?:" + "|".join(spaced) + r")(?!\w)", re.IGNORECASE)


def replace_extra(decision: Decision, overridden: list[str], extra: dict[str, Any]) -> Decision:
    from dataclasses import replace

    return replace(decision, overridden=tuple(dict.fromkeys(overridden)), rights=extra["rights"],
                   policy=extra["policy"], model_checked=True)
