"""The local engine: a real diffusers pipeline, loaded with `from_pretrained`, kept warm."""

from __future__ import annotations

import gc
import time
from typing import Any

from sora_cli.engines import Clip, Engine, ProgressEvent, Reporter, no_report, quiet_libraries
from sora_cli.engines.device import (
    apply_offload,
    choose_offload,
    is_oom,
    load_dtype,
    next_offload,
    out_of_memory,
    pick_device,
)
from sora_cli.errors import ModelError
from sora_cli.models import ModelInfo, local_folder, model_fingerprint
from sora_cli.requests import Plan


class DiffusersEngine(Engine):
    def __init__(self, info: ModelInfo, device: str | None = None, offload: str = "auto",
                 report: Reporter = no_report):
        self.info = info
        self.device = pick_device(device)
        self.requested_offload = offload
        self.load_seconds = 0.0
        notices = []
        if self.device == "cpu" and not info.is_builtin:
            notices.append(f"running {info.ref} on the CPU: expect minutes per step; a CUDA GPU is recommended")
        self.notices = tuple(notices)
        self.pipe = self._load(report)
        self.offload = choose_offload(offload, self.device, self.pipe)
        apply_offload(self.pipe, self.offload, self.device)
        folder = local_folder(info)
        self.model_hash = model_fingerprint(folder) if folder else None

    def _load(self, report: Reporter) -> Any:
        report(ProgressEvent("load", message=f"loading {self.info.ref}"))
        started = time.perf_counter()
        quiet_libraries()
        from diffusers import DiffusionPipeline

        dtype = load_dtype(self.device, self.info.family.vae_fp32)
        try:
            pipe = DiffusionPipeline.from_pretrained(self.info.location, dtype=dtype)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {self.info.ref} from {self.info.location}: {first[:300]}") from None
        pipe.set_progress_bar_config(disable=True)
        self.load_seconds = time.perf_counter() - started
        return pipe

    def pipeline_for(self, task: str) -> Any:
        """The loaded pipeline serves text-to-video itself; sibling tasks (from_pipe) come with their commands."""
        if task == "t2v" and task in self.info.tasks:
            return self.pipe
        raise ModelError(f"{self.info.ref} ({self.info.class_name}) cannot do {task} in this version")

    def generate(self, plan: Plan, report: Reporter = no_report) -> Clip:
        import torch

        pipe = self.pipeline_for("t2v")
        kwargs = self.info.family.call_kwargs(plan)

        def on_step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict) -> dict:
            report(ProgressEvent("denoise", step + 1, plan.steps))
            if step + 1 == plan.steps:
                report(ProgressEvent("decode"))
            return tensors

        retried = False
        while True:
            generator = torch.Generator("cpu").manual_seed(plan.seed)
            try:
                output = pipe(**kwargs, generator=generator, output_type="np", callback_on_step_end=on_step_end)
                break
            except Exception as exc:
                if not is_oom(exc):
                    raise
                fallback = next_offload(self.offload)
                if self.requested_offload != "auto" or retried or fallback is None:
                    raise out_of_memory(self.offload) from None
                retried = True
                self._reoffload(fallback, report)
                pipe = self.pipe
        from sora_cli.media.encode import to_uint8

        audio = getattr(output, "audio", None)
        return Clip(
            frames=to_uint8(output.frames),
            fps=plan.fps,
            audio=audio,
            info={"device": self.device, "offload": self.offload, "dtype": str(pipe.dtype)},
        )

    def _reoffload(self, mode: str, report: Reporter) -> None:
        """`--offload auto` hit OOM: reload with the next offload level, once."""
        import torch

        report(ProgressEvent("load", message=f"out of GPU memory; retrying with --offload {mode}"))
        self.pipe = None
        gc.collect()
        torch.cuda.empty_cache()
        self.pipe = self._load(report)
        self.offload = mode
        apply_offload(self.pipe, mode, self.device)

    def close(self) -> None:
        self.pipe = None  # the Studio collects when it swaps models; at exit a collection is wasted time
