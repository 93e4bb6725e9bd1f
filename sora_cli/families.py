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

#: what a model can be asked to do, and how a person would say it
TASKS = {
    "t2v": "text to video (generate)",
    "i2v": "photo to video (animate-image)",
    "v2v": "video to video (remix)",
    "extend": "continue a clip (extend)",
    "reference": "reference images (cameo)",
    "audio": "sound made with the video",
    "soundtrack": "a soundtrack from a prompt (--soundtrack)",
}


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
    # model_index.json `_class_name` -> {task: the pipeline class that serves it}. A class other than the
    # loaded one is built from it with `from_pipe`, sharing the weights.
    pipelines: Mapping[str, Mapping[str, str]]
    frame_step: int  # valid frame counts are frame_step * k + 1
    size_multiple: int
    defaults: Defaults
    vae_fp32: bool = False  # keep the VAE in float32 on GPU (bf16 decodes badly for some families)
    fps_argument: str | None = None  # e.g. LTX takes `frame_rate=`
    extra_call_kwargs: Mapping[str, Any] = field(default_factory=dict)
    last_image_pipelines: tuple[str, ...] = ()  # pipeline classes that take `last_image=`

    def tasks_for(self, class_name: str) -> tuple[str, ...]:
        return tuple(self.pipelines.get(class_name, {}))

    def last_image_support(self, pipeline_class: str, folder: Path | None) -> str:
        """Whether a checkpoint takes a last frame: "no", "optional" or "required" (families refine this)."""
        return "optional" if pipeline_class in self.last_image_pipelines else "no"

    def pipeline_for(self, class_name: str, task: str) -> str:
        """The pipeline class that does `task` for a checkpoint of `class_name`."""
        routes = self.pipelines.get(class_name, {})
        if task not in routes:
            raise ValidationError(f"{class_name} cannot do {TASKS.get(task, task)}")
        return routes[task]

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
        if request.task == "extend":  # the first frame repeats the clip's last one and is dropped at the join
            wanted += 1
        frames = self.valid_frames(wanted)
        notices = []
        if frames != wanted:
            notices.append(
                f"{self.label} makes {self.frame_step}k+1 frames: using {frames} frames "
                f"({frames / fps:.2f} s at {fps} fps) for the {seconds:g} s asked"
            )
        return Plan(
            request=request,
            task=request.task,
            model_ref=model_ref,
            model_id=model_id,
            family=self.name,
            pipeline_class=self.pipeline_for(class_name, request.task),
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
            "prompt": plan.model_prompt or plan.request.prompt,
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
        if plan.conditioning is not None:
            extra = self.conditioning_kwargs(plan)
            if "strength" in extra:  # Wan and CogVideoX V2V take the frame count from the clip itself
                del kwargs["num_frames"]
            kwargs.update(extra)
        return kwargs

    def conditioning_kwargs(self, plan: Plan) -> dict[str, Any]:
        """The photo or clip a task is conditioned on, in the argument names of diffusers' pipelines."""
        cond, cls = plan.conditioning, plan.pipeline_class
        assert cond is not None
        if cls.endswith("VACEPipeline"):
            return _vace_kwargs(plan)
        if cls.startswith("LTX2"):
            return _ltx2_kwargs(plan)
        if plan.task in ("i2v", "extend"):
            kwargs = {"image": cond.image}
            if cond.last_image is not None:
                kwargs["last_image"] = cond.last_image
            return kwargs
        if plan.task == "v2v":
            if cls.endswith("ConditionPipeline"):  # LTX / LTX-2: conditioning strength is a different knob
                return {"video": cond.video, "denoise_strength": cond.strength}
            return {"video": cond.video, "strength": cond.strength}
        return {}


def _vace_kwargs(plan: Plan) -> dict[str, Any]:
    """VACE takes `video` frames with a `mask` per frame: black keeps a frame, white generates it."""
    from PIL import Image

    cond = plan.conditioning
    assert cond is not None
    size = (plan.width, plan.height)
    kwargs: dict[str, Any] = {}
    if plan.task == "v2v" and cond.video is not None:
        kwargs["video"] = list(cond.video)  # the clip is the control signal; every frame is made anew
    elif plan.task in ("extend", "i2v") and cond.image is not None:
        blank = Image.new("RGB", size, (128, 128, 128))
        kwargs["video"] = [cond.image] + [blank] * (plan.num_frames - 1)
        black, white = Image.new("L", size, 0), Image.new("L", size, 255)
        kwargs["mask"] = [black] + [white] * (plan.num_frames - 1)
    if cond.reference_images:
        kwargs["reference_images"] = list(cond.reference_images)
    return kwargs


def _ltx2_kwargs(plan: Plan) -> dict[str, Any]:
    """LTX-2: a photo is `image=`, a clip is a condition whose strength says how much of it is kept."""
    import importlib.util

    cond = plan.conditioning
    assert cond is not None
    if plan.task == "v2v":
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        keep = 1.0 - (cond.strength if cond.strength is not None else 0.7)
        return {"conditions": [LTX2VideoCondition(frames=list(cond.video), index=0, strength=keep)]}
    kwargs: dict[str, Any] = {"image": cond.image}
    if importlib.util.find_spec("av") is None:
        kwargs["image_crf"] = 0  # the photo's H.264 round trip (its default crf 33) needs PyAV
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
