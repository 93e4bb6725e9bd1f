"""The enrolment liveness check, on clips made from skimage.data photos (see cameo_clips.py for how turns are made).

The figures asserted here are the ones measured with these clips: a simulated turn of 28-34 degrees of cylinder
reads 10-14 degrees of yaw, a printed photo tilted by up to 50 degrees reads under 5.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("skimage.data")

import cameo_clips as clips  # noqa: E402

from sora_cli.cameo import liveness  # noqa: E402
from sora_cli.cameo.liveness import Challenge, check_clip, new_challenge, yaw_degrees  # noqa: E402


def challenge(*turns: str, ttl: float = 600) -> Challenge:
    return Challenge("test", tuple(turns), "amber river otter lantern", time.time(), time.time() + ttl)


def yaw_of(img: np.ndarray) -> float:
    from sora_cli.safety.faces import _models

    rects, _, _ = _models()["detector"].run(img, 1, 0.0)
    assert len(rects) == 1
    shape = liveness._predictor()(img, rects[0])
    return yaw_degrees([(shape.part(k).x, shape.part(k).y) for k in range(68)])


def test_new_challenges_are_random_and_use_both_directions() -> None:
    issued = [new_challenge() for _ in range(30)]
    assert all(len(c.turns) == liveness.TURNS and set(c.turns) == {"left", "right"} for c in issued)
    assert len({c.turns for c in issued}) > 3 and len({c.phrase for c in issued}) == 30
    assert all(len(c.phrase.split()) == 4 and c.expires_at - c.issued_at == liveness.CHALLENGE_TTL for c in issued)
    assert "turn your head to your" in issued[0].instructions() and issued[0].phrase in issued[0].instructions()
    assert Challenge.from_dict(issued[0].to_dict()) == issued[0]


def test_yaw_reads_turns_but_not_a_tilted_photo() -> None:
    head = clips.head()
    assert abs(yaw_of(head)) < 1
    for deg in (28, 31, 34):
        assert yaw_of(clips.turned(head, deg)) > liveness.TURN_DEG - 0.5  # her left
    assert min(yaw_of(clips.turned(head, -d)) for d in (28, 31, 34)) < -liveness.TURN_DEG  # her right
    for deg in (-50, -40, -20, 20, 40):
        assert abs(yaw_of(clips.tilted(head, deg))) < 5, deg  # a flat picture has no nose sticking out


def test_a_clip_following_the_challenge_passes() -> None:
    asked = challenge("left", "right", "right", "left")
    report = check_clip(clips.turning_clip(asked.turns), 8.0, asked)
    assert report.passed, report.reason
    assert report.turns_seen == asked.turns and report.missing == 0
    assert all(abs(p) >= liveness.TURN_DEG for p in report.peaks_deg)
    assert report.identity_max_distance < 0.45
    assert report.embedding.shape == (128,) and len(report.references) == 3
    assert all(r.ndim == 3 and r.shape[0] > 100 for r in report.references)
    summary = report.summary()
    assert "embedding" not in summary and "references" not in summary and summary["passed"]


def test_a_mirrored_selfie_clip_needs_the_flag() -> None:
    asked = challenge("left", "right")
    mirror = np.ascontiguousarray(clips.turning_clip(asked.turns)[:, :, ::-1])
    assert check_clip(mirror, 8.0, asked, mirrored=True).passed
    refused = check_clip(mirror, 8.0, asked)
    assert not refused.passed and refused.turns_seen == ("right", "left") and "do not follow" in refused.reason


@pytest.mark.parametrize("name, frames, reason", [
    ("turns in the wrong order", lambda: clips.turning_clip(("right", "left")), "do not follow the challenge"),
    ("turns too small", lambda: clips.turning_clip(("left", "right"), peaks=(12.0, 14.0)), "no head turn"),
    ("a still photo", lambda: clips.still_clip(8), "no head turn"),
    ("a photo held up and tilted", lambda: clips.tilted_clip(("left", "right")), "no head turn"),
    ("two faces", lambda: clips.two_faces_clip(), "2 faces"),
    ("no face", lambda: clips.no_face_clip(), "no face"),
])
def test_bad_clips_are_refused_with_a_reason(name: str, frames, reason: str) -> None:
    report = check_clip(frames(), 8.0, challenge("left", "right"))
    assert not report.passed and reason in report.reason, (name, report.reason)
    assert report.embedding is None and report.references == []


def test_a_face_that_changes_identity_is_refused() -> None:
    asked = challenge("left", "right")
    frames = clips.turning_clip(asked.turns)
    frames[-3:] = clips.stranger(7)  # another person takes over at the end
    report = check_clip(frames, 8.0, asked)
    assert not report.passed and "changes identity" in report.reason
    assert report.identity_max_distance >= liveness.IDENTITY_TOLERANCE


def test_an_expired_challenge_or_a_lost_face_is_refused() -> None:
    asked = challenge("left", "right", ttl=-1)
    assert "expired" in check_clip(clips.still_clip(4), 8.0, asked).reason
    frames = clips.turning_clip(("left", "right"))
    frames[2:8] = clips.no_face_clip(6)
    report = check_clip(frames, 8.0, challenge("left", "right"))
    assert not report.passed and "lost in 6 of 14 frames" in report.reason
