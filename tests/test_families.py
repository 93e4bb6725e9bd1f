"""Family rules are pure arithmetic: checked before any model loads."""

from __future__ import annotations

import pytest

from sora_cli.builtin import FAMILIES
from sora_cli.errors import UsageError, ValidationError
from sora_cli.requests import GenerateRequest, parse_size

FAMILY = {f.name: f for f in FAMILIES}


@pytest.mark.parametrize(("family", "asked", "expected"), [
    ("wan", 80, 81), ("wan", 81, 81), ("wan", 32, 33), ("wan", 1, 5), ("wan", 35, 37),
    ("ltx", 125, 129), ("ltx", 124, 121), ("ltx", 161, 161), ("ltx2", 120, 121), ("cogvideox", 48, 49),
    ("hunyuan", 120, 121),
])
def test_frame_counts_follow_the_family_rule(family, asked, expected):
    assert FAMILY[family].valid_frames(asked) == expected


@pytest.mark.parametrize(("family", "size", "ok"), [
    ("wan", "832x480", True), ("wan", "830x480", False), ("ltx", "704x480", True), ("ltx", "720x480", False),
    ("hunyuan", "848x480", True), ("cogvideox", "720x480", True), ("ltx2", "768x512", True),
])
def test_sizes_follow_the_family_rule(family, size, ok):
    width, height = parse_size(size)
    if ok:
        FAMILY[family].check_size(width, height)
    else:
        with pytest.raises(ValidationError, match="divisible by"):
            FAMILY[family].check_size(width, height)


def test_a_rounded_frame_count_is_said():
    wan = FAMILY["wan"]
    plan = wan.plan(GenerateRequest("x", seconds=2, fps=16), model_ref="m", model_id="m", class_name="WanPipeline")
    assert plan.num_frames == 33
    assert any("33 frames" in n for n in plan.notices)
    exact = wan.plan(GenerateRequest("x", seconds=2.0625, fps=16), model_ref="m", model_id="m",
                     class_name="WanPipeline")
    assert exact.num_frames == 33 and exact.notices == ()


def test_defaults_and_random_seed_are_resolved():
    plan = FAMILY["wan"].plan(GenerateRequest("x"), model_ref="m", model_id="m", class_name="WanPipeline")
    assert (plan.width, plan.height, plan.fps, plan.num_frames, plan.steps) == (832, 480, 16, 81, 50)
    assert isinstance(plan.seed, int) and plan.seed >= 0


def test_ltx_gets_its_frame_rate_argument():
    plan = FAMILY["ltx"].plan(GenerateRequest("x", fps=24), model_ref="m", model_id="m", class_name="LTXPipeline")
    kwargs = FAMILY["ltx"].call_kwargs(plan)
    assert kwargs["frame_rate"] == 24 and kwargs["num_frames"] % 8 == 1


@pytest.mark.parametrize("bad", ["", "   ", "832", "832x", "0x480", "axb"])
def test_bad_sizes_and_prompts(bad):
    with pytest.raises(UsageError):
        GenerateRequest(bad if not bad.strip() else "prompt", size=bad if bad.strip() else None).check()
