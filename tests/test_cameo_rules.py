"""Owners' text rules, @mentions and the audience decision: pure functions, no faces needed."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from sora_cli.cameo.access import handles_in, may_use, normalize_handle, replace_mentions
from sora_cli.cameo.rules import check_rules, moderation_phrases, parse_rule
from sora_cli.errors import UsageError


@pytest.mark.parametrize("text, topic, enforced", [
    ("no political content", "politics", True), ("Not in ads", "ads", True), ("never in commercials", "ads", True),
    ("no violence", "violence", True), ("nothing sexual", "sexual", True), ("no smoking or drinking",
                                                                            "alcohol_drugs", True),
    ("no hats", None, True), ("only family-friendly videos", None, False), ("please be nice", None, False),
])
def test_how_a_rule_is_read(text: str, topic: str | None, enforced: bool) -> None:
    rule = parse_rule(text)
    assert rule.enforced is enforced and (rule.topic.name if rule.topic else None) == topic, rule.describe()


def test_rules_refuse_by_words() -> None:
    rules = ["no political content", "not in ads", "no hats", "only in daylight"]
    assert not check_rules(rules, "@alice casting a ballot in the elections").allowed
    refused = check_rules(rules, "@alice endorsing a brand of sneakers")
    assert refused.rule == "not in ads" and refused.triggers == ("endorsing", "brand") and "forbids" in refused.reason
    assert check_rules(rules, "@alice wearing two hats").rule == "no hats"
    assert check_rules(rules, "@alice walking a dog on the beach at night").allowed  # advisory rules are not checked
    assert parse_rule("no violence").category == "violence" and parse_rule("no hats").category is None
    assert moderation_phrases(["no hats", "only at night"]) == ["hat"]


class BagOfWords:
    """A sentence encoder with MiniLM's interface (unit vectors from `encode(texts)`), from hashed words."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 1024), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]{3,}", text.lower()):
                out[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 1024] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_rules_refuse_by_meaning_with_an_encoder() -> None:
    prompt = "a statesman giving a speech"  # no word of the politics list
    assert check_rules(["no political content"], prompt).allowed
    by_model = check_rules(["no political content"], prompt, encoder=BagOfWords())
    assert not by_model.allowed and by_model.layer == "model" and by_model.score >= 0.5
    assert by_model.triggers == ("a politician giving a campaign speech",) and "close to its topic" in by_model.reason
    assert check_rules(["no political content"], "a cat sleeping on a sofa", encoder=BagOfWords()).allowed


def test_mentions_and_handles() -> None:
    prompt = "@Alice and @bob_s meet (@alice again), mail x@example.com, @a is too short, @last-"
    assert handles_in(prompt) == ["alice", "bob_s"]
    assert replace_mentions("@alice, meet @zed.", {"alice": "Alice"}) == "Alice, meet @zed."
    assert normalize_handle("@Alice") == "alice"
    for bad in ("a", "white space", "-dash", "x" * 31, "émile"):
        with pytest.raises(UsageError):
            normalize_handle(bad)


@pytest.mark.parametrize("audience, requester, allowed", [
    ("only-me", None, True), ("only-me", "alice", True), ("only-me", "bob", False),
    ("approved", "bob", True), ("approved", "carol", False), ("mutuals", "bob", True), ("mutuals", "carol", True),
    ("mutuals", "dave", False), ("everyone", "anyone", True),
])
def test_who_may_use_a_cameo(audience: str, requester: str | None, allowed: bool) -> None:
    follows = {("alice", "carol"), ("carol", "alice"), ("dave", "alice")}
    decision = may_use(owner="alice", audience=audience, approved=("bob",), requester=requester, local_owner=True,
                       follows=lambda a, b: (a, b) in follows)
    assert decision.allowed is allowed and decision.reason
    imported = may_use(owner="alice", audience="everyone", approved=(), requester=None, local_owner=False)
    assert not imported.allowed and "set your handle" in imported.reason
