"""The hard-rule layer: the policy's patterns, term sets and character names, compiled once, matched in < 1 ms.

No model, no third-party import: this layer runs before anything loads.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from sora_cli.safety.policy import LOCKED, Category, Character, Policy

_APOSTROPHES = re.compile(r"['’‘`´]")
_PUNCT = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")
# leetspeak and symbol spellings ("s3x", "p0rn", "$lut", "k!ll"): mapped only inside tokens that mix letters with
# them, so numbers ("12 year old", "1970s", "9/11") and units ("4k", "1080p", "12yo") stay as they are
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
                       "!": "i", "|": "l", "+": "t"})
# a token of letters and leet marks, alone or in quotes, brackets, before a comma or a hyphen ("'k!kes'", "(s3x)",
# "sp1d3r-m4n")
_LEET_TOKEN = re.compile(r"(?=[^\s]*[a-z])(?=[^\s]*[0-9@$!|+])[a-z0-9@$!|+]+(?=[\s'\"‘’“”.,;:?)\]-]|$)"
                         r"|(?<![^\s])[@$][a-z]+")
_UNIT = re.compile(r"\d+(?:s|st|nd|rd|th|yo|y|yr|yrs|k|p|d|x|am|pm|fps|mm|cm|m|km|kg|g|gb|mb|hz|min|h|hr|hrs|v)?")
_ELISION = re.compile(r"(?<!\w)(d|l|qu|j|n|s|c|m|t|dell|dall|nell|sull|all)['’](?=\w)")  # d'Aya, l'État, dell'Italia
# Turkish case endings after an apostrophe ("Tarkan'ın", "Erdoğan'a", "İstanbul'da"): a word of their own in the
# deobfuscated text, so the name before them is one too (`normalize` glues them on: "tarkanın")
_SUFFIX = re.compile(r"(?<=\w)['’](?=(?:n?[ıiuü]n|[ıiuü]|y?[ae]|[dt][ae]n?|yl[ae]|l[ae]r\w*|s[ıiuü]|y[ıiuü]|"
                     r"n[ıiuü]|[ıiuü]m|d[ıiuü]r|n[dt][ae]n?|n[ae])(?!\w))")
_ECHOES = re.compile(r"\({3}\s*([^()]*?)\s*\){3}")  # "(((them)))": the antisemitic "echo", lost to punctuation
_SPELLED = re.compile(r"(?<!\w)(?:[a-z] ){2,}[a-z](?!\w)")  # "s e x", "p o r n" (after normalising "p.o.r.n")
# a letter drawn out ("shoooot", "killlll"): two of it, as English spells no letter three times (not "iii", "xxx")
_DRAWN_OUT = re.compile(r"([a-hj-wyz])\1{2,}")


# The vowel signs and other marks of the Indic scripts (Devanagari to Sinhala), and the invisible joiners those scripts
# use: dropped, so a word keeps its letters and stays one word ("मोदी" is "मद", "मैदान" is "मदन"; as marks turned into
# spaces, the one matched the start of the other). The policy's entries in those scripts are written the same way.
_INDIC_MARKS = {c: None for c in range(0x0900, 0x0E00) if unicodedata.category(chr(c)).startswith("M")}
_INDIC_MARKS |= {0x200C: None, 0x200D: None}


def unaccented(text: str) -> str:
    """`text` without its accents, Indic vowel signs and joiners; its case and punctuation as they are."""
    text = unicodedata.normalize("NFKD", text).translate(_INDIC_MARKS)
    return "".join(c for c in text if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """Lower case, no accents or apostrophes, other punctuation to spaces, single spaces."""
    return _PUNCT.sub(" ", _APOSTROPHES.sub("", unaccented(text).casefold())).strip()


def deobfuscate(text: str) -> str:
    """`normalize(text)` after undoing leetspeak ("s3x", "pr0n", "$lut"), spelled-out letters ("p o r n") and drawn-out
    ones ("shoooot" is "shoot").

    The rules run on this text as well as on the normalised one (a hit in either counts), so a mapping that
    breaks a real token ("c3po") costs nothing. French and Italian elisions come apart here ("d'Aya Nakamura" is
    "d aya nakamura", where `normalize` reads "daya nakamura"), so do Turkish case endings ("tarkan ın"), and
    triple parentheses are named ("(((them)))" is "triple parentheses them").
    """
    low = _SUFFIX.sub(" ", _ELISION.sub(r"\1 ", unicodedata.normalize("NFKC", text).casefold()))
    low = _DRAWN_OUT.sub(r"\1\1", _ECHOES.sub(r" triple parentheses \1 ", low))

    def unleet(m: re.Match[str]) -> str:
        token = m.group(0)
        core = token.rstrip("!")  # "wow!" is an exclamation, not a leet "i"
        if _UNIT.fullmatch(core):
            return token
        return core.translate(_LEET) + token[len(core):]

    def join(m: re.Match[str]) -> str:
        run = m.group(0)
        if run[0] in "ai" and len(run) >= 7:  # "a p o r n": the article stays a word of its own
            return run[:2] + run[2:].replace(" ", "")
        return run.replace(" ", "")

    return _SPELLED.sub(join, normalize(_LEET_TOKEN.sub(unleet, low)))


# Scripts written without spaces between words (kana, CJK ideographs, Thai), and Korean (Hangul, decomposed into jamo
# by `normalize`), whose words carry their particles ("자살을"): a phrase in them has no word boundary
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u1100-\u11ff\uac00-\ud7af]")


# Arabic and Hebrew write their particles ("and", "with", "to", "like", "the") onto the next word: a phrase is also
# looked up behind one or two of them ("وكخنازير" holds "خنازير", "והרצח" holds "רצח"). An Arabic verb in the present
# carries its person prefix the same way: the policy's past-tense "قطع اصابع" (cut off fingers) is also "يقطع اصابع"
_CLITICS = ("وال", "فال", "بال", "كال", "لل", "ال", "وب", "ول", "وك", "فب", "فل", "و", "ف", "ب", "ل", "ك",
            "وي", "وت", "سي", "ست", "ي", "ت", "ن",
            "וה", "וב", "ול", "ומ", "וש", "שה", "מה", "בה", "לה", "כש", "ו", "ה", "ב", "ל", "מ", "ש", "כ")
_CLITIC_LETTERS = frozenset(c[0] for c in _CLITICS)
# Hindi and Bengali write many case and plural endings onto the word ("মুসলমানদের", of Muslims; "आतंकवादियों"): an
# Indic word of the policy of at least _INDIC_STEM letters (as normalised: consonants and full vowels) also matches
# with up to _INDIC_ENDING more letters, so short names do not ("मद", Modi, is not "मदन")
_INDIC = re.compile("[\u0900-\u0dff]")
_INDIC_STEM, _INDIC_ENDING = 3, 2
_SYNTAX = re.compile(r"[\\()\[\]|?*+.^${}]")  # a phrase with any of these is a regular expression
_PLAIN = re.compile(r"\w+(?: \w+)*")  # words and single spaces: looked up, not compiled


class Phrases:
    """Alternatives matched as whole words, as `(?<!\\w)(?:a|b|...)(?:s|es)?(?!\\w)` would match them (the "s"/"es"
    tail only when `plural`); an alternative in a script without spaces (Japanese, Chinese, Thai) matches anywhere.

    Plain phrases (10,800 of the policy's 12,700 alternatives) are looked up in a table by their first word. The
    ~1,950 with regex syntax are each compiled on its own, and only once a text holds one of the literal strings
    every match of it contains (`required`: "nazi salute" for `nazi salute\\w*`): compiling them all up front, as
    every process did before its first check, was 0.06 s of the 0.15 s a policy took to load, and a prompt needs a
    handful. Each is matched on its own, so its matches that overlap another's are candidates too.
    `owners` (parallel to `alternatives`) says whose each alternative is: `spans` reports it (the character an alias
    names); without them every alternative is owner 0.
    """

    def __init__(self, alternatives: tuple[str, ...] | list[str], plural: bool = False,
                 owners: list[int] | None = None):
        self.plural = plural
        self.table: dict[str, list[tuple[str, int]]] = {}  # first word -> (phrase, owner)
        self.anywhere: list[tuple[str, int]] = []  # plain phrases in scripts without spaces
        self.regexes: list[tuple[int, str]] = []  # (owner, alternative) with regex syntax, in the policy's order
        self._always: list[int] = []  # those with no required string: tried on every text
        self._by_gram: dict[str, list[tuple[str, int]]] = {}  # a required string's first 3 letters -> (it, index)
        self._short: list[tuple[str, int]] = []  # required strings shorter than 3 letters
        for alt, owner in zip(alternatives, owners or [0] * len(alternatives), strict=True):
            plain = not _SYNTAX.search(alt)
            if plain and _UNSPACED.search(alt):
                self.anywhere.append((alt, owner))
            elif plain and _PLAIN.fullmatch(alt):
                self.table.setdefault(alt.split(" ", 1)[0], []).append((alt, owner))
            else:
                index = len(self.regexes)
                self.regexes.append((owner, alt))
                atoms = required(alt)
                if atoms is None:
                    self._always.append(index)
                for atom in atoms or ():
                    if len(atom) >= 3:
                        self._by_gram.setdefault(atom[:3], []).append((atom, index))
                    else:
                        self._short.append((atom, index))
        # up to ~50 required strings, `in` on each is quicker than the 3-letter index
        self._few = [(atom, i) for group in self._by_gram.values() for atom, i in group] + self._short
        if len(self._few) > 48:
            self._few = []

    def _regexes_for(self, text: str) -> list[tuple[int, str]]:
        """The (owner, alternative)s with regex syntax that may match in `text`: those none of whose required
        strings are in it cannot."""
        if not self.regexes:
            return []
        live = set(self._always)
        if self._few:  # a short list: each string looked for
            live.update(index for atom, index in self._few if atom in text)
        else:
            for gram in _grams(text):
                for atom, index in self._by_gram.get(gram, ()):
                    if index not in live and atom in text:
                        live.add(index)
            live.update(index for atom, index in self._short if atom in text)
        return [self.regexes[index] for index in sorted(live)]

    def __bool__(self) -> bool:
        return bool(self.table or self.anywhere or self.regexes)

    def candidates(self, text: str) -> list[tuple[int, int, int]]:
        """Every match (start, end, owner), overlapping ones included."""
        found = []
        if self.table:
            for start, word in _words(text):
                keys = [(0, word)]
                if self.plural and word.endswith("s"):  # "kids": the one-word phrase "kid" plus its tail
                    keys += [(0, word[:-1])] + ([(0, word[:-2])] if word.endswith("es") else [])
                if word[0] in _CLITIC_LETTERS:  # "لذبح" is "ذبح" after the particle "ل"
                    keys += [(len(c), word[len(c):]) for c in _CLITICS if word.startswith(c) and len(word) - len(c) > 1]
                if len(word) > _INDIC_STEM and _INDIC.match(word):  # "মসলমনদর" is "মসলমন" and its ending
                    keys += [(0, word[:n]) for n in range(max(_INDIC_STEM, len(word) - _INDIC_ENDING), len(word))]
                for cut, key in keys:
                    for phrase, owner in self.table.get(key, ()):
                        if (end := self._end(text, start + cut, phrase)) is not None:
                            found.append((start + cut, end, owner))
        for phrase, owner in self.anywhere:
            at = text.find(phrase)
            while at >= 0:
                found.append((at, at + len(phrase), owner))
                at = text.find(phrase, at + len(phrase))
        for owner, alt in self._regexes_for(text):
            found += [(m.start(), m.end(), owner) for m in _alone(alt, self.plural).finditer(text)]
        return found

    def _end(self, text: str, start: int, phrase: str) -> int | None:
        if not text.startswith(phrase, start):
            return None
        end = start + len(phrase)
        tails = ("s", "es", "") if self.plural else ("",)
        for tail in tails:
            if text.startswith(tail, end) and not _is_word(text, end + len(tail)):
                return end + len(tail)
        if _INDIC.match(phrase[-1]) and len(phrase.rsplit(" ", 1)[-1]) >= _INDIC_STEM:  # a Bengali case ending
            stop = end
            while stop < len(text) and stop - end < _INDIC_ENDING and _INDIC.match(text, stop):
                stop += 1
            if stop > end and not _is_word(text, stop):
                return stop
        return None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Non-overlapping matches, leftmost first and, of those starting together, the longest."""
        out: list[tuple[int, int]] = []
        for start, end, _ in sorted(self.candidates(text), key=lambda c: (c[0], -c[1])):
            if not out or start >= out[-1][1]:
                out.append((start, end))
        return out

    def matches(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.spans(text)]

    def strike(self, text: str, replacement: str) -> str:
        """`text` with each match replaced."""
        spans = self.spans(text)
        if not spans:
            return text
        parts, last = [], 0
        for a, b in spans:
            parts += [text[last:a], replacement]
            last = b
        return "".join(parts) + text[last:]


@lru_cache(maxsize=256)
def _grams(text: str) -> frozenset[str]:
    """Every 3-letter substring of `text`."""
    return frozenset(text[i:i + 3] for i in range(len(text) - 2))


@lru_cache(maxsize=64)
def _words(text: str) -> tuple[tuple[int, str], ...]:
    return tuple((m.start(), m.group(0)) for m in _WORD.finditer(text))


def _is_word(text: str, at: int) -> bool:
    return at < len(text) and (text[at].isalnum() or text[at] == "_")


def _bounded(alternatives: list[str], plural: bool) -> re.Pattern[str]:
    """One pattern matching any alternative as whole words (a trailing "s"/"es" too when `plural`); alternatives
    in scripts without spaces (Japanese, Chinese, Thai) match anywhere."""
    tail = "(?:s|es)?" if plural else ""
    spaced = [a for a in alternatives if not _UNSPACED.search(a)]
    unspaced = [a for a in alternatives if _UNSPACED.search(a)]
    parts = [r"(?<!\w)(?:" + "|".join(f"(?:{a})" for a in spaced) + f"){tail}(?!\\w)"] if spaced else []
    if unspaced:
        parts.append("(?:" + "|".join(f"(?:{a})" for a in unspaced) + ")")
    return re.compile("|".join(parts))


@lru_cache(maxsize=8192)  # the shipped policy has ~1,950
def _alone(alternative: str, plural: bool) -> re.Pattern[str]:
    return _bounded([alternative], plural)


# a regular expression read as tokens: literal runs, escapes, character classes, group brackets, bars, quantifiers
_TOKEN = re.compile(r"(?P<lit>[^\\()\[\]|?*+.^${}]+)|(?P<esc>\\.)|(?P<cls>\[\^?\]?(?:\\.|[^\]\\])*\])"
                    r"|(?P<open>\((?:\?(?::|=|!|<=|<!))?)|(?P<close>\))|(?P<bar>\|)"
                    r"|(?P<quant>(?:[?*+]|\{(?P<low>\d*)(?:,\d*)?\})[?+]?)|(?P<any>\.)|(?P<anchor>[\^$])|(?P<other>.)",
                    re.DOTALL)


class _Unreadable(Exception):
    pass


def required(regex: str) -> frozenset[str] | None:
    """Literal strings of which every match of `regex` contains at least one (the longest set a simple reading
    proves: `(?:kill|murder)\\w* (?:\\w+ ){0,2}one by one` -> {"one by one"}), or None when none can be proven
    (or the expression uses syntax this reading does not know, such as flags or backreferences)."""
    tokens = list(_TOKEN.finditer(regex))
    try:
        atoms, at = _required_alt(tokens, 0)
    except _Unreadable:
        return None
    return atoms if at == len(tokens) else None


def _required_alt(tokens: list[re.Match[str]], at: int) -> tuple[frozenset[str] | None, int]:
    branches = []
    while True:
        atoms, at = _required_seq(tokens, at)
        branches.append(atoms)
        if at < len(tokens) and tokens[at].lastgroup == "bar":
            at += 1
            continue
        break
    if any(b is None for b in branches):
        return None, at
    return frozenset().union(*branches), at  # type: ignore[arg-type]


def _required_seq(tokens: list[re.Match[str]], at: int) -> tuple[frozenset[str] | None, int]:
    """A sequence's best required set: its longest run of literal characters that are always there, or a group's."""
    options: list[frozenset[str]] = []
    run = ""
    while at < len(tokens) and tokens[at].lastgroup not in ("bar", "close"):
        tok = tokens[at]
        kind, text = tok.lastgroup, tok.group(0)
        at += 1
        if kind == "open":
            inner, at = _required_alt(tokens, at)
            if at >= len(tokens) or tokens[at].lastgroup != "close":
                raise _Unreadable
            at += 1
            if text in ("(", "(?:"):
                item, value = "group", inner
            else:  # a lookaround matches no characters
                item, value = "zero", None
        elif kind == "lit":
            run += text[:-1]  # a quantifier after a run binds its last character only
            item, value = "char", text[-1]
        elif kind == "esc":
            if text[1] in "wWsSdD":
                item, value = "any", None
            elif text[1] in "bBAZ":
                item, value = "zero", None
            elif text[1].isalnum():  # backreferences, \n, \u...: not read here
                raise _Unreadable
            else:
                item, value = "char", text[1]
        elif kind in ("cls", "any"):
            item, value = "any", None
        elif kind == "anchor":
            item, value = "zero", None
        else:  # a quantifier with nothing before it, or a stray character
            raise _Unreadable
        low, quantified = 1, False
        if at < len(tokens) and tokens[at].lastgroup == "quant":
            quant = tokens[at].group("quant").rstrip("?+") or tokens[at].group("quant")[0]
            quantified = True
            low = 0 if quant in ("?", "*") else 1 if quant == "+" else int(tokens[at].group("low") or 0)
            at += 1
        if item == "zero":
            if quantified:
                raise _Unreadable
            continue  # matches no characters: the run goes on
        if item == "char" and low >= 1:
            run += value
            if not quantified:
                continue
        if run:
            options.append(frozenset([run]))
            run = ""
        if item == "group" and low >= 1 and value is not None:
            options.append(value)
    if run:
        options.append(frozenset([run]))
    if not options:
        return None, at
    return max(options, key=lambda o: (min(map(len, o)), -len(o))), at


def _distinct(words: list[str]) -> tuple[str, ...]:
    """Each trigger once, leaving out those inside a longer one ("fake" when "fake video" is there)."""
    unique = list(dict.fromkeys(words))
    return tuple(w for w in unique if not any(w != o and re.search(rf"\b{re.escape(w)}\b", o) for o in unique))


@dataclass(frozen=True)
class Hit:
    category: str
    verdict: str  # "refuse" | "rephrase"
    triggers: tuple[str, ...]
    layer: str = "rule"  # "rule" | "rights"
    reason: str = ""  # the rights registry's answer, for "rights" hits


class _Compiled:
    def __init__(self, cat: Category, unless: Phrases):
        self.cat = cat
        self.shared_unless = unless  # the global list: built once, shared by the categories that use it
        self.unless = Phrases(cat.unless)
        self.patterns = Phrases(cat.patterns)
        self.grey = Phrases(cat.grey_patterns)


def _strike(comp: _Compiled, text: str, without: dict[int, str]) -> str:
    """`text` without the benign phrases of the shared unless list (cached in `without`), then the category's own."""
    key = id(comp.shared_unless)
    if key not in without:
        without[key] = comp.shared_unless.strike(text, " | ")
    return comp.unless.strike(without[key], " | ")


_MASKED = re.compile(r"(?<![\w*])([^\W\d_]+)(\*{1,3})([^\W\d_]+)(?![\w*])")


class Rules:
    """Every category's rules plus the character names, compiled from one policy."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.terms = {name: Phrases(alts, plural=True) for name, alts in policy.terms.items()}
        # the global unless list and the negated phrases ("no gore"); the locked category sees only the shipped ones
        lists = {c.name: (policy.locked_unless if c.name == LOCKED else policy.unless) + policy.negated
                 for c in policy.categories.values()}
        shared = {alts: Phrases(alts) for alts in {*lists.values(), policy.unless + policy.negated}}
        self.compiled = [_Compiled(c, shared[lists[c.name]]) for c in policy.categories.values()]
        self._benign = shared[policy.unless + policy.negated]
        self._locked_benign = shared.get(policy.locked_unless + policy.negated, self._benign)
        self.negated = Phrases(policy.negated)
        self.characters = list(policy.characters)
        self._aliases = Phrases([a for ch in self.characters for a in ch.aliases],
                                owners=[i for i, ch in enumerate(self.characters) for _ in ch.aliases])
        self._copyright = policy.categories.get("copyrighted_character")
        # the one-word entries of every term set and pattern ("sex", "faggots?", "suicid\w*"), for filling in
        # masked words ("s*x")
        self._words: set[str] = set()
        self._stems: set[str] = set()
        for alt in {a for alts in policy.terms.values() for a in alts} | {
                p for c in policy.categories.values() for p in c.patterns}:
            one = _ONE_WORD.fullmatch(alt)
            if one is not None and len(one.group(1)) >= 3:
                word, end = one.groups()
                if end in ("\\w*", "\\w+"):
                    self._stems.add(word)
                else:
                    self._words.update({word, word + "s", word + "es"} if end else {word})

    def unmask(self, text: str) -> str:
        """The prompt as typed with each masked word filled in where exactly one word or stem of the policy fits it:
        "s*x", "f*ggots", "k*ll" (a star per hidden letter, letters on both sides; "s**t" fits several, so it stays)."""
        def fill(m: re.Match[str]) -> str:
            masked = (m.group(1) + "?" * len(m.group(2)) + m.group(3)).casefold()
            hidden = masked.rindex("?") + 1  # a stem must cover every hidden letter

            def fits(word: str, whole: bool) -> bool:
                size = len(masked) if whole else len(word)
                return (len(word) == len(masked) if whole else hidden <= size <= len(masked)) and all(
                    a in ("?", b) for a, b in zip(masked[:size], word, strict=True))

            found = {w for w in self._words if fits(w, True)} | {
                s + masked[len(s):] for s in self._stems if fits(s, False)}
            return found.pop() if len(found) == 1 else m.group(0)

        return _MASKED.sub(fill, text) if "*" in text else text

    def scan(self, text: str) -> list[Hit]:
        """All rule hits on a normalised prompt, in the policy's priority order."""
        hits = []
        without: dict[int, str] = {}  # the text without each shared list's phrases, worked out once
        for comp in self.compiled:
            clean = _strike(comp, text, without)
            hit = self._scan_category(comp, clean)
            if hit is not None:
                hits.append(hit)
        return hits

    def without_benign(self, text: str, locked: bool = False) -> str:
        """A normalised text without the global list's benign phrases ("sex ed", "pelicula de terror") and negated
        harm; `locked`: the shipped list only, as the locked category reads it."""
        return (self._locked_benign if locked else self._benign).strike(text, " | ")

    def without_negated(self, text: str) -> str:
        """A normalised text without its negated harm phrases ("no gore", "nothing explicit")."""
        return self.negated.strike(text, " | ")

    def characters_named(self, text: str) -> list[tuple[Character, str]]:
        comp = next((c for c in self.compiled if c.cat is self._copyright), None)
        clean = _strike(comp, text, {}) if comp else text
        first: dict[int, tuple[int, str]] = {}  # each character's leftmost alias in the prompt
        for start, end, owner in self._aliases.candidates(clean):
            if owner not in first or start < first[owner][0]:
                first[owner] = (start, clean[start:end])
        return [(self.characters[i], first[i][1]) for i in sorted(first)]

    def term_matches(self, name: str, text: str) -> list[str]:
        pat = self.terms.get(name)
        return pat.matches(text) if pat else []

    def _scan_category(self, comp: _Compiled, text: str) -> Hit | None:
        name = comp.cat.name
        found = comp.patterns.matches(text)
        for group in comp.cat.all_of:
            words = [self.term_matches(t, text) for t in group]
            if all(words):
                found += [w[0] for w in words]
        for near in comp.cat.near:
            found += self._near(text, near.first, near.then, near.within, near.either_order)
        if found:
            return Hit(name, "refuse", _distinct(found))
        grey = comp.grey.matches(text)
        for term in comp.cat.grey_terms:
            grey += self.term_matches(term, text)[:1]
        return Hit(name, "rephrase", _distinct(grey)) if grey else None

    def _near(self, text: str, first: str, then: str, within: int, either: bool) -> list[str]:
        a, b = self.terms.get(first), self.terms.get(then)
        if a is None or b is None:
            return []
        starts = [m.start() for m in _WORD.finditer(text)]

        def spans(pat: Phrases) -> list[tuple[int, int, int, int, str]]:
            """Each match's first and last word, its characters, and its text."""
            return [(bisect_right(starts, s) - 1, bisect_right(starts, e - 1) - 1, s, e, text[s:e])
                    for s, e in pat.spans(text)]

        def follows(first: tuple, then: tuple) -> bool:
            """`then` starts at most `within` words after `first` ends; in a script without spaces, where one
            "word" is a whole clause, later in the same word ("宇多田ヒカルの声で")."""
            gap = then[0] - first[1] - 1
            return 0 <= gap <= within or (gap == -1 and then[2] >= first[3])

        for x in spans(a):
            for y in spans(b):
                if follows(x, y) or (either and follows(y, x)):
                    return [x[4], y[4]]
        return []


_REGEX_SYNTAX = re.compile(r"\(\?[:!=<]*|\\[wWsSdDb][*+?]?|\{\d*,?\d*\}|[()|?+.^$\[\]\\]")


def trigger_phrases(policy: Policy) -> set[str]:
    """The plain two- and three-word phrases of the policy (character aliases, term sets such as the artists and
    public figures, refusing patterns): the targets of `Speller`'s phrase mending ("hary poter", "tayler swift")."""
    texts = [a for ch in policy.characters for a in ch.aliases]
    texts += [t for terms in policy.terms.values() for t in terms]
    texts += [p for c in policy.categories.values() for p in c.patterns]
    return {t for t in texts if re.fullmatch(r"[a-z]+(?: [a-z]+){1,2}", t) and len(t) >= 8}


def _skeleton(words: list[str]) -> str:
    """Each word's first letter and consonants, doubled letters once: "harry potter", "hary poter" -> "hr ptr"."""
    return " ".join(re.sub(r"(.)\1+", r"\1", w[0] + re.sub(r"[aeiouy]", "", w[1:])) for w in words)


def _distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


_ONE_WORD = re.compile(r"([a-z]+)(\\w\*|\\w\+|s\?|\(\?:s\|es\)\?)?")  # "gore", "decapitat\\w*", "kids?"


def trigger_words(policy: Policy, shortest: int = 6, names: int = 6) -> tuple[set[str], set[str]]:
    """The one-word rules (a refusing pattern or a character alias that is a single word or `stem\\w*`), for the
    spelling layer: ("gore", "pornography", "decapitat", "spiderman", ...); a one-word character alias counts from
    `names` letters ("spiderman", "pikachu": a five-letter name is one slip from words of other languages, "calle" ~
    "walle", "limon" ~ "timon"). Multi-word phrases are mended whole (see `trigger_phrases`)."""
    patterns = [p for c in policy.categories.values() for p in c.patterns]
    aliases = {a for ch in policy.characters for a in ch.aliases}
    words: set[str] = set()
    stems: set[str] = set()
    for text in [*patterns, *aliases]:
        if " " in text and " ?" not in text:  # a phrase: mended whole
            continue
        one = _ONE_WORD.fullmatch(text.replace(" ?", ""))
        if one is not None and len(one.group(1)) >= (names if text in aliases else shortest):
            (stems if one.group(2) in ("\\w*", "\\w+") else words).add(one.group(1))
    return words, stems


_ENDINGS = ("s", "es", "ed", "d", "ing", "er", "ers", "est", "ly", "y", "ies", "ied", "ness", "ment", "ments", "ful",
            "less", "able", "al", "ally", "ist", "ists", "ism", "ion", "ions", "ation", "ations", "ive", "ity", "ous")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class Speller:
    """Mend one-letter slips in words MiniLM does not know ("sucidal", "decapatated") towards the rules' words.

    A word is mended only when it is not a known word, has at least `shortest` letters, and is one edit (a letter
    added, dropped, changed, or two swapped) from exactly one rule word or the start of one rule stem that begins
    with the same letter: a slip rarely hits the first letter, while a real word MiniLM lacks often is one edit
    from a rule word there ("vaping" is not "raping", "hamster" is not "xhamster"). Nor is a word mended into one it
    only lengthens at the end: a last letter is rarely dropped, while a word and its derivative often differ just so.

    Its indexes are built when the first word MiniLM does not know needs them (0.04 s for the shipped policy): a
    prompt of known words, like most, never waits for them.
    """

    def __init__(self, words: set[str], stems: set[str], known: set[str], shortest: int = 6,
                 phrases: set[str] = frozenset()):  # type: ignore[assignment]
        self.known = known
        self.shortest = shortest
        self.stems = stems
        self.words = words
        self._phrase_list = phrases
        self._index: dict[str, set[str]] | None = None
        self._phrases: dict[str, set[str]] | None = None

    @property
    def index(self) -> dict[str, set[str]]:
        """A rule word, or a stem (marked "*"), under itself and each of its one-letter deletions."""
        if self._index is None:
            index: dict[str, set[str]] = {}  # built aside: threads racing here build the same thing
            for target in self.words | {s + "*" for s in self.stems}:
                base = target.rstrip("*")
                for key in {base} | _deletes(base):
                    index.setdefault(key, set()).add(target)
            self._index = index
        return self._index

    @property
    def phrases(self) -> dict[str, set[str]]:
        """Skeleton -> the policy phrases that have it."""
        if self._phrases is None:
            phrases: dict[str, set[str]] = {}
            for phrase in self._phrase_list:
                phrases.setdefault(_skeleton(phrase.split()), set()).add(phrase)
            self._phrases = phrases
        return self._phrases

    def _one_edit(self, word: str) -> str | None:
        found: set[str] = set()
        for key in {word} | _deletes(word):
            for target in self.index.get(key, ()):
                base = target.rstrip("*")
                if base[:1] == word[:1] and _distance_one(word, base):
                    found.add(target)
        return found.pop() if len(found) == 1 else None

    def is_known(self, word: str) -> bool:
        """A known word, or a known word plus a common ending ("napping", "breaches", "swingers")."""
        if word in self.known:
            return True
        for ending in _ENDINGS:
            if word.endswith(ending) and len(word) > len(ending) + 2:
                stem = word[:-len(ending)]
                if {stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem,
                        stem[:-1] + "y" if stem.endswith("i") else stem} & self.known:
                    return True
                if self.is_known(stem) if len(stem) >= 4 and stem != word else False:
                    return True
        return False

    def mend(self, word: str) -> str | None:
        if len(word) < self.shortest or not word.isalpha() or self.is_known(word):
            return None
        if {word, word[:-1], word[:-2], word + "s"} & self.words:
            return None  # a rule word already, or one with another ending
        if any(word[:cut] in self.stems for cut in range(self.shortest, len(word) + 1)):
            return None  # a rule stem already matches it
        target = self._one_edit(word)
        if target is not None and not target.endswith("*") and not target.startswith(word):
            return target  # not a word the target only lengthens: "slime" is not a slip of "slimer"
        for cut in range(len(word) - 1, self.shortest - 2, -1):  # a mistyped stem plus its ending
            head = self._one_edit(word[:cut])
            if head is not None and head.endswith("*"):
                return head[:-1] + word[cut:]
        return None

    def correct(self, text: str) -> str:
        """The normalised text with each mendable word replaced, then each misspelt policy phrase."""
        return self.mend_phrases(_WORD.sub(lambda m: self.mend(m.group(0)) or m.group(0), text))

    def mend_phrases(self, text: str) -> str:
        """Replace a run of two or three words that holds a word MiniLM does not know and is a few letters from
        exactly one policy phrase (same consonant skeleton, edit distance <= 1 per 5 letters): "hary poter"."""
        words = text.split()
        if not self._phrase_list or all(w in self.known for w in words):
            return text
        out, i = [], 0
        while i < len(words):
            for n in (3, 2):
                span = words[i:i + n]
                if len(span) < n or all(w in self.known for w in span):
                    continue
                said = " ".join(span)
                found = {p for p in self.phrases.get(_skeleton(span), ()) if _distance(said, p) <= max(1, len(p) // 5)}
                if len(found) == 1:
                    out.append(found.pop())
                    i += n
                    break
            else:
                out.append(words[i])
                i += 1
        return " ".join(out)


def _distance_one(a: str, b: str) -> bool:
    """Exactly one insertion, deletion, substitution or swap of neighbours apart."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]
