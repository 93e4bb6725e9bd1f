"""Model families: which diffusers pipelines make up a family, and the rules a request must meet.

Pure data and arithmetic: no torch here, so validation runs before anything heavy is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.errors import ValidationError
from sora_cli.requests import GenerateRequest, Plan, parse_size, random_seed

TASKS = ("t2v", "i2v", "v2v", "reference", "audio")


@dataclass(frozen=True)
class Defaults:
    size: str
    seconds: float
    fps: int
    steps: int
    guidance: float


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    # model_index.json `_class_name` -> the tasks a checkpoint of that class can serve
    pipelines: Mapping[str, tuple[str, ...]]
    # task -> the pipeline class that serves it, built from a loaded one with `from_pipe`
    task_pipelines: Mapping[str, str]
    frame_step: int  # valid frame counts are frame_step * k + 1
    size_multiple: int
    defaults: Defaults
    vae_fp32: bool = False  # keep the VAE in float32 on GPU (bf16 decodes badly for some families)
    fps_argument: str | None = None  # e.g. LTX takes `frame_rate=`
    extra_call_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def tasks_for(self, class_name: str) -> tuple[str, ...]:
        return self.pipelines.get(class_name, ())

    def valid_frames(self, requested: int) -> int:
        """The valid frame count nearest to `requested` (ties go up); at least one step of motion."""
        k = max(1, math.floor((requested - 1) / self.frame_step + 0.5))
        return self.frame_step * k + 1

    def check_size(self, width: int, height: int) -> None:
        m = self.size_multiple
        bad = [f"{name} {v}" for name, v in (("width", width), ("height", height)) if v % m]
        if bad:
            hint = f"{_round_to(width, m)}x{_round_to(height, m)}"
            raise ValidationError(
                f"{self.label} needs sizes divisible by {m}: {' and '.join(bad)} "
                f"{'are' if len(bad) > 1 else 'is'} not (try {hint})"
            )

    def plan(
        self,
        request: GenerateRequest,
        *,
        model_ref: str,
        model_id: str,
        class_name: str,
        defaults: Defaults | None = None,
    ) -> Plan:
        """Resolve every value the pipeline gets; a changed value is said in `notices`, never silent."""
        d = defaults or self.defaults
        width, height = parse_size(request.size or d.size)
        self.check_size(width, height)
        fps = request.fps or d.fps
        seconds = request.seconds if request.seconds is not None else d.seconds
        wanted = max(1, round(seconds * fps))
        frames = self.valid_frames(wanted)
        notices = []
        if frames != wanted:
            notices.append(
                f"{self.label} makes {self.frame_step}k+1 frames: using {frames} frames "
                f"({frames / fps:.2f} s at {fps} fps) for the {seconds:g} s asked"
            )
        return Plan(
            request=request,
            model_ref=model_ref,
            model_id=model_id,
            family=self.name,
            pipeline_class=class_name,
            width=width,
            height=height,
            num_frames=frames,
            fps=fps,
            steps=request.steps or d.steps,
            guidance=request.guidance if request.guidance is not None else d.guidance,
            seed=request.seed if request.seed is not None else random_seed(),
            notices=tuple(notices),
        )

    def call_kwargs(self, plan: Plan) -> dict[str, Any]:
        """Arguments for the pipeline's __call__, diffusers' names throughout."""
        kwargs: dict[str, Any] = {
            "prompt": plan.request.prompt,
            "negative_prompt": plan.request.negative_prompt,
            "height": plan.height,
            "width": plan.width,
            "num_frames": plan.num_frames,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance,
            **self.extra_call_kwargs,
        }
        if self.fps_argument:
            kwargs[self.fps_argument] = plan.fps
        return kwargs


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


@dataclass(frozen=True)
class BuiltinModel:
    """A random-weight pipeline the toolkit builds offline; it is saved, then loaded like a checkpoint."""

    name: str
    family: str
    description: str
    build: Callable[[Path], None]  # writes a diffusers pipeline folder (save_pretrained) into the path
    version: str  # bump when the builder changes, so caches rebuild
    defaults: Defaults | None = None
    pipeline: str | None = None  # the pipeline class it builds, so listing needs no build
