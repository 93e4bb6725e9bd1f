"""The random-weight tiny families: built offline, loaded back like checkpoints, every call shape run.

Real diffusers components throughout (no mocks): each model is built once per module, loaded with
`DiffusionPipeline.from_pretrained` and called with 2 steps at a small size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from sora_cli.engines.tiny import (
    build_tiny_ltx2,
    build_tiny_stable_audio,
    build_tiny_wan,
    build_tiny_wan22_i2v,
    build_tiny_wan_flf2v,
    build_tiny_wan_i2v,
    build_tiny_wan_vace,
)

BUILDERS = [build_tiny_wan_i2v, build_tiny_wan_flf2v, build_tiny_wan22_i2v, build_tiny_wan_vace, build_tiny_ltx2,
            build_tiny_stable_audio]
SIZE = 64  # Wan: multiple of 16; LTX-2: multiple of 32
FRAMES = 9  # 4k+1 for Wan, 8k+1 for LTX-2


def _load(factory: pytest.TempPathFactory, build: Callable[[Path], None]) -> DiffusionPipeline:
    folder = factory.mktemp(build.__name__)
    build(folder)
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(seed: int, width: int = SIZE, height: int = SIZE) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8))


def _seed() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _same_weight(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return next(a.parameters()).data_ptr() == next(b.parameters()).data_ptr()


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return _load(tmp_path_factory, build_tiny_wan)


@pytest.fixture(scope="module")
def ltx2(tmp_path_factory):
    return _load(tmp_path_factory, build_tiny_ltx2)


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_builds_are_byte_identical(build, tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert any(p.suffix == ".safetensors" for p in files)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert sum((tmp_path / "a" / p).stat().st_size for p in files) < 2_000_000


def test_wan_i2v_takes_an_image(tmp_path_factory):
    pipe = _load(tmp_path_factory, build_tiny_wan_i2v)
    assert type(pipe).__name__ == "WanImageToVideoPipeline" and pipe.image_encoder is not None
    out = pipe(image=_image(0), prompt="a fox", height=SIZE, width=SIZE, num_frames=FRAMES, num_inference_steps=2,
               generator=_seed())
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    # Wan 2.1 I2V cannot take a last frame: two CLIP embeddings meet a batch of one (hence the FLF2V build)
    with pytest.raises(RuntimeError):
        pipe(image=_image(0), last_image=_image(1), prompt="a fox", height=SIZE, width=SIZE, num_frames=5,
             num_inference_steps=1)


def test_wan_flf2v_takes_first_and_last_frames(tmp_path_factory):
    pipe = _load(tmp_path_factory, build_tiny_wan_flf2v)
    assert pipe.transformer.config.pos_embed_seq_len is not None
    out = pipe(image=_image(0), last_image=_image(1), prompt="a fox", height=SIZE, width=SIZE, num_frames=FRAMES,
               num_inference_steps=2, generator=_seed())
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    with pytest.raises(RuntimeError):  # and, like the real FLF2V, it cannot go without one
        pipe(image=_image(0), prompt="a fox", height=SIZE, width=SIZE, num_frames=5, num_inference_steps=1)


def test_wan22_i2v_takes_an_image_with_or_without_a_last_frame(tmp_path_factory):
    pipe = _load(tmp_path_factory, build_tiny_wan22_i2v)
    assert pipe.image_encoder is None and pipe.transformer_2 is not None
    for extra in ({}, {"last_image": _image(1)}):
        out = pipe(image=_image(0), prompt="a fox", height=SIZE, width=SIZE, num_frames=FRAMES,
                   num_inference_steps=2, generator=_seed(), **extra)
        assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)


def test_wan_vace_text_masked_video_and_reference(tmp_path_factory):
    pipe = _load(tmp_path_factory, build_tiny_wan_vace)
    video = [_image(i) for i in range(FRAMES)]
    keep, make = Image.new("L", (SIZE, SIZE), 0), Image.new("L", (SIZE, SIZE), 255)
    calls = [
        {},  # text to video
        {"video": video, "mask": [keep] * 4 + [make] * (FRAMES - 4)},  # continuation: keep 4 frames, make the rest
        {"reference_images": [_image(99)]},  # a subject to carry into the clip
    ]
    for extra in calls:
        out = pipe(prompt="a fox", height=SIZE, width=SIZE, num_frames=FRAMES, num_inference_steps=2,
                   generator=_seed(), **extra)
        assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)  # reference frames are dropped from the output


def test_wan_video_to_video_shares_the_text_to_video_weights(wan):
    from diffusers import WanVideoToVideoPipeline

    v2v = WanVideoToVideoPipeline.from_pipe(wan)
    v2v.set_progress_bar_config(disable=True)
    assert _same_weight(v2v.transformer, wan.transformer) and _same_weight(v2v.vae, wan.vae)
    out = v2v(video=[_image(i) for i in range(FRAMES)], prompt="a fox", height=SIZE, width=SIZE, strength=0.6,
              num_inference_steps=2, generator=_seed())
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3)


def _ltx2_audio_samples(pipe, num_frames: int, frame_rate: float) -> int:
    """4 mel frames per audio latent, less 3 for the causal decoder, then vocoder samples per 10 ms mel hop."""
    latents = round(num_frames / frame_rate * pipe.audio_sampling_rate / pipe.audio_hop_length / 4)
    per_mel_frame = pipe.vocoder.config.output_sampling_rate * pipe.audio_hop_length // pipe.audio_sampling_rate
    return (4 * latents - 3) * per_mel_frame


@pytest.mark.parametrize(("num_frames", "frame_rate"), [(FRAMES, 24.0), (25, 25.0)])
def test_ltx2_makes_video_and_audio_of_the_same_length(ltx2, num_frames, frame_rate):
    assert type(ltx2).__name__ == "LTX2Pipeline"
    assert (ltx2.vae_spatial_compression_ratio, ltx2.vae_temporal_compression_ratio) == (32, 8)
    out = ltx2(prompt="a fox", height=SIZE, width=96, num_frames=num_frames, frame_rate=frame_rate,
               num_inference_steps=2, generator=_seed(), output_type="np")
    assert isinstance(out.frames, np.ndarray) and out.frames.shape == (1, num_frames, SIZE, 96, 3)
    audio = out.audio  # a torch tensor whatever output_type says: [batch, stereo, samples]
    rate = ltx2.vocoder.config.output_sampling_rate
    assert isinstance(audio, torch.Tensor) and audio.shape[:2] == (1, 2) and rate == 16000
    assert audio.shape[2] == _ltx2_audio_samples(ltx2, num_frames, frame_rate)
    # the causal audio decoder ends 30 ms early, rounding moves it up to 20 ms more
    assert abs(audio.shape[2] / rate - num_frames / frame_rate) <= 0.05
    assert float(audio.abs().max()) > 0


def test_ltx2_image_and_video_conditioning_share_the_weights(ltx2):
    from diffusers import LTX2ConditionPipeline, LTX2ImageToVideoPipeline
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    common = dict(prompt="a fox", height=SIZE, width=SIZE, num_frames=FRAMES, frame_rate=24.0, num_inference_steps=2,
                  output_type="np")
    i2v = LTX2ImageToVideoPipeline.from_pipe(ltx2)
    i2v.set_progress_bar_config(disable=True)
    assert _same_weight(i2v.transformer, ltx2.transformer) and _same_weight(i2v.text_encoder, ltx2.text_encoder)
    # image_crf=0: the default re-compresses the image with H.264 through PyAV, which is not installed
    out = i2v(image=_image(0), image_crf=0, generator=_seed(), **common)
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3) and out.audio.shape[2] > 0

    cond = LTX2ConditionPipeline.from_pipe(ltx2)
    cond.set_progress_bar_config(disable=True)
    assert _same_weight(cond.transformer, ltx2.transformer)
    video = [_image(i) for i in range(FRAMES)]
    out = cond(conditions=[LTX2VideoCondition(frames=video, index=0, strength=1.0)], generator=_seed(), **common)
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3) and out.audio.shape[2] > 0


def test_stable_audio_length_and_limit(tmp_path_factory):
    pipe = _load(tmp_path_factory, build_tiny_stable_audio)
    rate = pipe.vae.sampling_rate
    longest = pipe.transformer.config.sample_size * pipe.vae.hop_length / rate
    assert rate == 44100 and 23 < longest < 24
    out = pipe(prompt="rain on a tin roof", audio_end_in_s=1.5, num_inference_steps=2, generator=_seed(),
               output_type="np")
    assert out.audios.shape == (1, 2, int(1.5 * rate)) and np.abs(out.audios).max() > 0
    with pytest.raises(ValueError, match="maximum possible length"):
        pipe(prompt="rain", audio_end_in_s=longest + 1, num_inference_steps=2)
