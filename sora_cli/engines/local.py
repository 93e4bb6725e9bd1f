"""The local engine: a real diffusers pipeline, loaded with `from_pretrained`, kept warm."""

from __future__ import annotations

import gc
import time
from typing import Any

from sora_cli.engines import MODEL_LOADING, Clip, Engine, ProgressEvent, Reporter, no_report, quiet_libraries
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
        dtype = load_dtype(self.device, self.info.family.vae_fp32)
        try:
            with MODEL_LOADING:  # imports too: diffusers' and transformers' lazy modules are not thread-safe
                quiet_libraries()
                from diffusers import DiffusionPipeline

                pipe = DiffusionPipeline.from_pretrained(self.info.location, dtype=dtype)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load model {self.info.ref} from {self.info.location}: {first[:300]}") from None
        pipe.set_progress_bar_config(disable=True)
        self.load_seconds = time.perf_counter() - started
        self._siblings = {type(pipe).__name__: pipe}
        return pipe

    def pipeline_for(self, class_name: str) -> Any:
        """The loaded pipeline, or a sibling built from it with `from_pipe`: same weights, no second copy."""
        if class_name not in self._siblings:
            import diffusers

            cls = getattr(diffusers, class_name, None)
            if cls is None:
                raise ModelError(f"this diffusers ({diffusers.__version__}) has no {class_name}")
            sibling = cls.from_pipe(self.pipe)
            sibling.set_progress_bar_config(disable=True)
            self._siblings[class_name] = sibling
        return self._siblings[class_name]

    def generate(self, plan: Plan, report: Reporter = no_report) -> Clip:
        import torch

        pipe = self.pipeline_for(plan.pipeline_class)
        kwargs = self.info.family.call_kwargs(plan)
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()

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
                pipe = self.pipeline_for(plan.pipeline_class)
        from sora_cli.media.encode import to_uint8

        info = {"device": self.device, "offload": self.offload, "dtype": str(pipe.dtype)}
        if self.device.startswith("cuda"):
            info["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        audio, rate = audio_of(output, pipe) if plan.request.audio else (None, None)
        return Clip(frames=to_uint8(output.frames), fps=plan.fps, audio=audio, sample_rate=rate, info=info)

    def _reoffload(self, mode: str, report: Reporter) -> None:
        """`--offload auto` hit OOM: reload with the next offload level, once."""
        import torch

        report(ProgressEvent("load", message=f"out of GPU memory; retrying with --offload {mode}"))
        self.pipe = self._siblings = None
        gc.collect()
        torch.cuda.empty_cache()
        self.pipe = self._load(report)
        self.offload = mode
        apply_offload(self.pipe, mode, self.device)

    def close(self) -> None:
        # the Studio collects when it swaps models; at exit a collection is wasted time
        self.pipe = self._siblings = None


def audio_of(output: Any, pipe: Any) -> tuple[Any, int | None]:
    """The sound a pipeline made with the video (LTX-2), as float32 [channels, samples], and its rate."""
    import numpy as np

    audio = getattr(output, "audio", None)
    if audio is None:
        return None, None
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    while audio.ndim > 2:  # a batch of one
        audio = audio[0]
    if audio.ndim == 1:
        audio = audio[None]
    return audio, sample_rate(pipe)


def sample_rate(pipe: Any) -> int:
    """Where diffusers' audio-making pipelines keep their output rate."""
    for component, key in (("vocoder", "output_sampling_rate"), ("vocoder", "sampling_rate"),
                           ("audio_vae", "sample_rate"), ("vae", "sampling_rate")):
        config = getattr(getattr(pipe, component, None), "config", None)
        value = getattr(config, key, None) if config is not None else None
        if value:
            return int(value)
    raise ModelError(f"{type(pipe).__name__} made sound but says no sample rate")
