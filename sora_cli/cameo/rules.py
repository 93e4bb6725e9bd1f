"""An owner's text rules on the use of their cameo ("no political content", "not in ads"), checked on prompts.

What is enforced, honestly:
- A rule that forbids ("no …", "not …", "never …", "nothing …", "without …", "avoid …", "don't …") is enforced;
  any other rule ("only family-friendly videos") is kept, shown and exported, but cannot be checked offline and
  is reported as advisory.
- A forbidding rule about a known topic (politics, ads, violence, sexual content, alcohol and drugs, weapons,
  religion) refuses prompts with that topic's words. Violence and sexual content also name the moderation policy's
  category, so the caller can hold the prompt to that category even where an admin override would let it pass.
- Any other forbidding rule refuses prompts containing its own words ("no hats" refuses "wearing a hat").
- With a sentence encoder (the moderator's MiniLM, `encoder.encode(texts)` -> unit vectors), a prompt is also
  refused when it is close to a rule's topic sentences (cosine >= SIMILARITY), which catches paraphrases the word
  lists miss ("a candidate gives a stump speech"). Word lists miss new phrasings and flag innocent homonyms
  ("a commercial kitchen"); a refusal names the rule so the owner's intent is visible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SIMILARITY = 0.5
_FORBID = re.compile(r"^(no|not|never|nothing|without|avoid|don'?t|do not|none|zero)\b", re.I)
_FILLER = frozenset("no not never nothing without avoid dont don't do none zero in on of for with about any anything "
                    "content contents video videos clip clips use used using me my myself i a an the be being as to "
                    "or and please allowed kind kinds type types sort stuff things related showing that this "
                    "appear appearing involving".split())


@dataclass(frozen=True)
class Topic:
    name: str
    rule_words: tuple[str, ...]  # stems that, in a rule, name this topic
    terms: tuple[str, ...]  # regexes matched (word-bounded) in a prompt
    sentences: tuple[str, ...]  # what the encoder compares prompts against
    category: str | None = None  # the moderation policy category it corresponds to, if any


TOPICS = (
    Topic("politics", ("politic", "election", "campaign", "partisan", "government"),
          (r"politic\w*", r"elections?", r"electoral", r"campaign\w*", r"vot(e|es|ed|er|ers|ing)", r"ballots?",
           r"president\w*", r"senat\w*", r"congress\w*", r"parliament\w*", r"prime minister", r"governors?",
           r"candidates?", r"democrats?", r"republicans?", r"rall(y|ies)", r"protest\w*", r"propaganda",
           r"referend\w*", r"government\w*", r"ministers?", r"left[- ]wing", r"right[- ]wing"),
          ("a politician giving a campaign speech", "people voting in an election", "a political protest march",
           "a candidate asking for votes", "a debate between presidential candidates")),
    Topic("ads", ("ad", "ads", "advert", "commercial", "marketing", "sponsor", "promot", "brand", "endorse",
                  "product"),
          (r"ads?", r"advert\w*", r"commercials?", r"infomercials?", r"marketing", r"sponsor\w*", r"promo\w*",
           r"endors\w*", r"brands?", r"branded", r"billboards?", r"product placement", r"buy now", r"slogans?",
           r"on sale", r"discount\w*", r"sells?", r"selling"),
          ("an advertisement for a product", "a TV commercial selling a new phone",
           "a person endorsing a brand", "a sponsored promotional video", "a billboard ad campaign")),
    Topic("violence", ("violen", "gore", "fight", "blood", "kill", "hurt"),
          (r"violen\w*", r"gor(e|y)", r"blood\w*", r"kill\w*", r"fight\w*", r"punch\w*", r"stab\w*",
           r"shoot\w*", r"murder\w*", r"attack\w*", r"wound\w*", r"beat(ing|en)? up"),
          ("a violent fight with blood", "someone being attacked and hurt"), "violence"),
    Topic("sexual", ("sex", "nud", "nsfw", "lingerie", "romanc", "romantic", "kiss", "explicit", "suggestive"),
          (r"sex\w*", r"nud\w*", r"naked", r"nsfw", r"lingerie", r"underwear", r"kiss\w*", r"romantic",
           r"seductive", r"strip\w*", r"erotic\w*", r"topless"),
          ("a sexy seductive scene", "a romantic kiss in bed", "a person undressing"), "sexual"),
    Topic("alcohol_drugs", ("alcohol", "drink", "drunk", "drug", "smok", "beer", "wine", "weed", "cannabis"),
          (r"alcohol\w*", r"drunk\w*", r"beers?", r"wines?", r"vodka", r"whisk(e)?y", r"cocktails?", r"drugs?",
           r"cannabis", r"weed", r"marijuana", r"cocaine", r"smok\w*", r"cigar\w*", r"vap(e|ing)"),
          ("a person drinking beer at a bar", "someone smoking a cigarette", "people taking drugs at a party")),
    Topic("weapons", ("weapon", "gun", "firearm", "knife", "knives"),
          (r"weapons?", r"guns?", r"rifles?", r"pistols?", r"firearms?", r"knif(e|es)", r"knives", r"swords?"),
          ("a person holding a gun", "someone waving a knife")),
    Topic("religion", ("religio", "church", "faith", "god"),
          (r"religio\w*", r"church\w*", r"mosques?", r"temples?", r"synagogues?", r"pray\w*", r"god", r"gods",
           r"priests?", r"imams?", r"rabbis?"),
          ("a person praying in a church", "a religious ceremony")),
)


def _stem(word: str) -> str:
    word = word.lower().strip("'-")
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'-]*", text.lower())


@dataclass(frozen=True)
class Rule:
    text: str
    enforced: bool
    topic: Topic | None = None
    words: tuple[str, ...] = ()  # stems of a rule with no known topic
    # the patterns a prompt is matched against
    pattern: re.Pattern[str] | None = None

    @property
    def category(self) -> str | None:
        return self.topic.category if self.topic else None

    def describe(self) -> str:
        if not self.enforced:
            return f"{self.text!r} (advisory: only rules that forbid something are checked)"
        what = f"topic {self.topic.name}" if self.topic else f"words {', '.join(self.words)}"
        return f"{self.text!r} (checked: {what})"


def parse_rule(text: str) -> Rule:
    """How a rule's text is read: forbidding or advisory; a known topic, or its own words."""
    clean = " ".join(text.split())
    if not _FORBID.match(clean):
        return Rule(clean, False)
    words = [w for w in _words(clean) if w.replace("'", "") not in _FILLER and w not in _FILLER]
    stems = [_stem(w) for w in words]
    for topic in TOPICS:
        if any(s.startswith(r) or s == r for s in stems for r in topic.rule_words if len(r) > 2 or s == r):
            pattern = re.compile(r"\b(" + "|".join(topic.terms) + r")\b", re.I)
            return Rule(clean, True, topic, pattern=pattern)
    if not stems:
        return Rule(clean, False)
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) + r"\w*" for s in dict.fromkeys(stems)) + r")\b", re.I)
    return Rule(clean, True, None, tuple(dict.fromkeys(stems)), pattern)


@dataclass(frozen=True)
class RuleVerdict:
    allowed: bool
    rule: str | None = None
    triggers: tuple[str, ...] = ()
    layer: str | None = None  # "words" | "model"
    score: float | None = None

    @property
    def reason(self) -> str:
        if self.allowed:
            return "no rule applies"
        said = ", ".join(f'"{t}"' for t in self.triggers)
        how = f"close to its topic ({self.score:.2f})" if self.layer == "model" else f"matched {said}"
        return f"the owner's rule {self.rule!r} forbids this prompt ({how})"


def check_rules(rules: list[str] | tuple[str, ...], prompt: str, encoder: Any = None) -> RuleVerdict:
    """The first forbidding rule the prompt breaks, by words and (with an encoder) by meaning."""
    parsed = [parse_rule(r) for r in rules]
    for rule in parsed:
        if rule.enforced and rule.pattern is not None:
            found = [m.group(0) for m in rule.pattern.finditer(prompt)]
            if found:
                return RuleVerdict(False, rule.text, tuple(dict.fromkeys(found)), "words")
    if encoder is None:
        return RuleVerdict(True)
    targets = [(rule, s) for rule in parsed if rule.enforced
               for s in (rule.topic.sentences if rule.topic else (" ".join(rule.words),))]
    if not targets:
        return RuleVerdict(True)
    vectors = encoder.encode([prompt] + [s for _, s in targets])
    sims = vectors[1:] @ vectors[0]
    best = int(sims.argmax())
    if float(sims[best]) >= SIMILARITY:
        return RuleVerdict(False, targets[best][0].text, (targets[best][1],), "model", round(float(sims[best]), 3))
    return RuleVerdict(True)


def moderation_phrases(rules: list[str] | tuple[str, ...]) -> list[str]:
    """Sentences describing what the rules forbid: extra examples for a moderation model layer."""
    out: list[str] = []
    for rule in map(parse_rule, rules):
        if rule.enforced:
            out += list(rule.topic.sentences) if rule.topic else [" ".join(rule.words)]
    return list(dict.fromkeys(out))
