"""The built-in plugin: the model families we support and the random-weight `tiny` models.

Registered through the same entry-point group as third-party plugins (see pyproject.toml).
"""

from __future__ import annotations

import json
from pathlib import Path

from sora_cli.families import BuiltinModel, Defaults, Family
from sora_cli.plugins import Registry


class WanFamily(Family):
    def last_image_support(self, pipeline_class: str, folder: Path | None) -> str:
        """Wan 2.2 I2V takes a last frame or not; FLF2V checkpoints need one; Wan 2.1 I2V (CLIP) cannot take one."""
        if pipeline_class not in self.last_image_pipelines:
            return "no"
        try:
            config = json.loads((folder / "transformer" / "config.json").read_text()) if folder else None
        except (OSError, ValueError):
            config = None
        if config is None:
            return "optional"  # not on disk yet (a hub id): the pipeline itself will say
        if config.get("pos_embed_seq_len"):
            return "required"
        return "optional" if config.get("image_dim") is None else "no"

FAMILIES = (
    WanFamily(
        name="wan",
        label="Wan 2.1/2.2",
        pipelines={
            "WanPipeline": {"t2v": "WanPipeline", "v2v": "WanVideoToVideoPipeline"},
            "WanVideoToVideoPipeline": {"v2v": "WanVideoToVideoPipeline", "t2v": "WanPipeline"},
            # I2V checkpoints (and FLF2V ones) have an image encoder and a 36-channel transformer
            "WanImageToVideoPipeline": {"i2v": "WanImageToVideoPipeline", "extend": "WanImageToVideoPipeline"},
            # VACE does everything through one pipeline: masks say which frames to keep or make
            "WanVACEPipeline": {task: "WanVACEPipeline" for task in ("t2v", "i2v", "v2v", "extend", "reference")},
        },
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="832x480", seconds=5, fps=16, steps=50, guidance=5.0),
        vae_fp32=True,
        last_image_pipelines=("WanImageToVideoPipeline",),
    ),
    Family(
        name="ltx",
        label="LTX-Video",
        pipelines={
            "LTXPipeline": {"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline",
                            "extend": "LTXImageToVideoPipeline", "v2v": "LTXConditionPipeline"},
            "LTXImageToVideoPipeline": {"i2v": "LTXImageToVideoPipeline", "extend": "LTXImageToVideoPipeline",
                                        "t2v": "LTXPipeline", "v2v": "LTXConditionPipeline"},
            "LTXConditionPipeline": {"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline",
                                     "extend": "LTXImageToVideoPipeline", "v2v": "LTXConditionPipeline"},
        },
        frame_step=8,
        size_multiple=32,
        defaults=Defaults(size="704x480", seconds=5, fps=25, steps=50, guidance=3.0),
        fps_argument="frame_rate",
    ),
    Family(
        name="ltx2",
        label="LTX-2",
        pipelines={
            cls: {"t2v": "LTX2Pipeline", "i2v": "LTX2ImageToVideoPipeline", "extend": "LTX2ImageToVideoPipeline",
                  "v2v": "LTX2ConditionPipeline", "audio": cls}
            for cls in ("LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline")
        },
        frame_step=8,
        size_multiple=32,
        defaults=Defaults(size="768x512", seconds=5, fps=24, steps=40, guidance=4.0),
        fps_argument="frame_rate",
    ),
    Family(
        name="cogvideox",
        label="CogVideoX",
        pipelines={
            "CogVideoXPipeline": {"t2v": "CogVideoXPipeline", "v2v": "CogVideoXVideoToVideoPipeline"},
            "CogVideoXVideoToVideoPipeline": {"v2v": "CogVideoXVideoToVideoPipeline", "t2v": "CogVideoXPipeline"},
            "CogVideoXImageToVideoPipeline": {"i2v": "CogVideoXImageToVideoPipeline",
                                              "extend": "CogVideoXImageToVideoPipeline"},
        },
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="720x480", seconds=6, fps=8, steps=50, guidance=6.0),
    ),
    Family(
        name="hunyuan",
        label="HunyuanVideo 1.0/1.5",
        pipelines={
            "HunyuanVideoPipeline": {"t2v": "HunyuanVideoPipeline"},
            "HunyuanVideoImageToVideoPipeline": {"i2v": "HunyuanVideoImageToVideoPipeline",
                                                 "extend": "HunyuanVideoImageToVideoPipeline"},
            "HunyuanSkyreelsImageToVideoPipeline": {"i2v": "HunyuanSkyreelsImageToVideoPipeline",
                                                    "extend": "HunyuanSkyreelsImageToVideoPipeline"},
            "HunyuanVideo15Pipeline": {"t2v": "HunyuanVideo15Pipeline"},
            "HunyuanVideo15ImageToVideoPipeline": {"i2v": "HunyuanVideo15ImageToVideoPipeline",
                                                   "extend": "HunyuanVideo15ImageToVideoPipeline"},
        },
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="848x480", seconds=5, fps=24, steps=50, guidance=6.0),
    ),
    # Not a video family: text-to-audio checkpoints for `--soundtrack`; frame rules do not apply.
    Family(
        name="audio",
        label="Stable Audio / AudioLDM2",
        pipelines={
            "StableAudioPipeline": {"soundtrack": "StableAudioPipeline"},
            "AudioLDM2Pipeline": {"soundtrack": "AudioLDM2Pipeline"},
        },
        frame_step=1,
        size_multiple=1,
        defaults=Defaults(size="1x1", seconds=10, fps=1, steps=100, guidance=7.0),
    ),
)


def _tiny(builder: str):
    """A build function that imports the tiny builders (and torch) only when a model is built."""

    def build(path: Path) -> None:
        from sora_cli.engines import tiny

        getattr(tiny, builder)(path)

    build.__name__ = builder
    return build


_TINY_DEFAULTS = Defaults(size="256x256", seconds=2, fps=16, steps=4, guidance=5.0)
_NOISE = "abstract noise, for tests and demos"

TINY_MODELS = (
    BuiltinModel(name="tiny", family="wan", pipeline="WanPipeline", build=_tiny("build_tiny_wan"), version="2",
                 defaults=_TINY_DEFAULTS,
                 description=f"random-weight Wan 2.1 text-to-video architecture (2 layers, ~0.3 MB): {_NOISE}"),
    BuiltinModel(name="tiny-i2v", family="wan", pipeline="WanImageToVideoPipeline",
                 build=_tiny("build_tiny_wan22_i2v"), version="1", defaults=_TINY_DEFAULTS,
                 description=f"random-weight Wan 2.2 image-to-video architecture (takes a last frame too): {_NOISE}"),
    BuiltinModel(name="tiny-vace", family="wan", pipeline="WanVACEPipeline", build=_tiny("build_tiny_wan_vace"),
                 version="1", defaults=_TINY_DEFAULTS,
                 description=f"random-weight Wan VACE architecture (masks, reference images): {_NOISE}"),
    BuiltinModel(name="tiny-av", family="ltx2", pipeline="LTX2Pipeline", build=_tiny("build_tiny_ltx2"),
                 version="1", defaults=Defaults(size="256x256", seconds=2, fps=24, steps=4, guidance=4.0),
                 description=f"random-weight LTX-2 architecture, video with sound: {_NOISE}"),
    BuiltinModel(name="tiny-audio", family="audio", pipeline="StableAudioPipeline",
                 build=_tiny("build_tiny_stable_audio"), version="1",
                 defaults=Defaults(size="1x1", seconds=2, fps=1, steps=4, guidance=7.0),
                 description=f"random-weight Stable Audio architecture for --soundtrack: {_NOISE}"),
)

TINY = TINY_MODELS[0]  # the default model


def register(registry: Registry) -> None:
    for family in FAMILIES:
        registry.add_family(family)
    for model in TINY_MODELS:
        registry.add_builtin_model(model)
