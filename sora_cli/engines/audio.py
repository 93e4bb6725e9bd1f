"""Soundtracks for silent videos: a diffusers text-to-audio pipeline (Stable Audio, AudioLDM2), kept warm."""

from __future__ import annotations

import time
from typing import Any

from sora_cli.engines import MODEL_LOADING, ProgressEvent, Reporter, no_report, quiet_libraries
from sora_cli.engines.device import load_dtype, pick_device
from sora_cli.errors import ModelError
from sora_cli.models import ModelInfo

# the argument that sets the length, per pipeline class
_LENGTH_ARGUMENT = {"StableAudioPipeline": "audio_end_in_s", "AudioLDM2Pipeline": "audio_length_in_s"}


class SoundtrackEngine:
    def __init__(self, info: ModelInfo, device: str | None = None, report: Reporter = no_report):
        self.info = info
        self.device = pick_device(device)
        report(ProgressEvent("load", message=f"loading {info.ref} for the soundtrack"))
        started = time.perf_counter()
        try:
            with MODEL_LOADING:  # imports too: diffusers' and transformers' lazy modules are not thread-safe
                quiet_libraries()
                from diffusers import DiffusionPipeline

                self.pipe = DiffusionPipeline.from_pretrained(info.location, dtype=load_dtype(self.device, False))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"cannot load soundtrack model {info.ref}: {first[:300]}") from None
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.load_seconds = time.perf_counter() - started

    @property
    def max_seconds(self) -> float | None:
        """The longest clip the model makes in one call (Stable Audio: its sample size), if it says."""
        vae = getattr(self.pipe, "vae", None)
        transformer = getattr(self.pipe, "transformer", None)
        rate = getattr(getattr(vae, "config", None), "sampling_rate", None)
        size = getattr(getattr(transformer, "config", None), "sample_size", None)
        hop = getattr(vae, "hop_length", None)
        if rate and size and hop:
            return size * hop / rate
        return None

    def generate(self, prompt: str, seconds: float, seed: int, report: Reporter = no_report) -> tuple[Any, int]:
        """float32 [channels, samples] of exactly `seconds`, and the sample rate."""
        import numpy as np
        import torch

        from sora_cli.engines.local import sample_rate

        cls = type(self.pipe).__name__
        length = min(seconds, self.max_seconds or seconds)
        defaults = self.info.defaults
        report(ProgressEvent("soundtrack", message=f"making {seconds:.2f} s of sound"))
        output = self.pipe(
            prompt=prompt, num_inference_steps=defaults.steps, guidance_scale=defaults.guidance,
            generator=torch.Generator("cpu").manual_seed(seed), output_type="np",
            **{_LENGTH_ARGUMENT.get(cls, "audio_length_in_s"): length},
        )
        audio = np.asarray(output.audios, dtype=np.float32)
        while audio.ndim > 2:
            audio = audio[0]
        if audio.ndim == 1:
            audio = audio[None]
        rate = sample_rate(self.pipe)
        return fit_length(audio, round(seconds * rate)), rate

    def close(self) -> None:
        self.pipe = None


def fit_length(audio: Any, samples: int, fade: int = 256) -> Any:
    """Trim, or loop with a short fade, to exactly `samples` (a model's one call may be shorter than the video)."""
    import numpy as np

    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    pieces, have = [audio], audio.shape[-1]
    ramp = np.linspace(0.0, 1.0, min(fade, have), dtype=np.float32)
    while have < samples:
        piece = audio.copy()
        piece[..., : len(ramp)] *= ramp  # no click where the loop starts again
        pieces.append(piece)
        have += piece.shape[-1]
    return np.concatenate(pieces, axis=-1)[..., :samples]
