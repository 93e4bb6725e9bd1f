"""The built-in plugin: the model families we support and the random-weight `tiny` models.

Registered through the same entry-point group as third-party plugins (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

from sora_cli.families import BuiltinModel, Defaults, Family
from sora_cli.plugins import Registry

FAMILIES = (
    Family(
        name="wan",
        label="Wan 2.1/2.2",
        pipelines={
            "WanPipeline": ("t2v", "v2v"),
            "WanImageToVideoPipeline": ("i2v",),
            "WanVideoToVideoPipeline": ("v2v",),
            "WanVACEPipeline": ("t2v", "v2v", "reference"),
        },
        task_pipelines={"t2v": "WanPipeline", "i2v": "WanImageToVideoPipeline",
                        "v2v": "WanVideoToVideoPipeline", "reference": "WanVACEPipeline"},
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="832x480", seconds=5, fps=16, steps=50, guidance=5.0),
        vae_fp32=True,
    ),
    Family(
        name="ltx",
        label="LTX-Video",
        pipelines={
            "LTXPipeline": ("t2v", "i2v", "v2v"),
            "LTXImageToVideoPipeline": ("i2v",),
            "LTXConditionPipeline": ("t2v", "i2v", "v2v"),
        },
        task_pipelines={"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline", "v2v": "LTXConditionPipeline"},
        frame_step=8,
        size_multiple=32,
        defaults=Defaults(size="704x480", seconds=5, fps=25, steps=50, guidance=3.0),
        fps_argument="frame_rate",
    ),
    Family(
        name="ltx2",
        label="LTX-2",
        pipelines={
            "LTX2Pipeline": ("t2v", "i2v", "audio"),
            "LTX2ImageToVideoPipeline": ("i2v", "audio"),
            "LTX2ConditionPipeline": ("t2v", "i2v", "v2v", "audio"),
        },
        task_pipelines={"t2v": "LTX2Pipeline", "i2v": "LTX2ImageToVideoPipeline", "v2v": "LTX2ConditionPipeline"},
        frame_step=8,
        size_multiple=32,
        defaults=Defaults(size="768x512", seconds=5, fps=24, steps=40, guidance=4.0),
        fps_argument="frame_rate",
    ),
    Family(
        name="cogvideox",
        label="CogVideoX",
        pipelines={
            "CogVideoXPipeline": ("t2v", "v2v"),
            "CogVideoXImageToVideoPipeline": ("i2v",),
            "CogVideoXVideoToVideoPipeline": ("v2v",),
        },
        task_pipelines={"t2v": "CogVideoXPipeline", "i2v": "CogVideoXImageToVideoPipeline",
                        "v2v": "CogVideoXVideoToVideoPipeline"},
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="720x480", seconds=6, fps=8, steps=50, guidance=6.0),
    ),
    Family(
        name="hunyuan",
        label="HunyuanVideo 1.0/1.5",
        pipelines={
            "HunyuanVideoPipeline": ("t2v",),
            "HunyuanVideoImageToVideoPipeline": ("i2v",),
            "HunyuanSkyreelsImageToVideoPipeline": ("i2v",),
            "HunyuanVideo15Pipeline": ("t2v",),
            "HunyuanVideo15ImageToVideoPipeline": ("i2v",),
        },
        task_pipelines={"t2v": "HunyuanVideoPipeline", "i2v": "HunyuanVideoImageToVideoPipeline"},
        frame_step=4,
        size_multiple=16,
        defaults=Defaults(size="848x480", seconds=5, fps=24, steps=50, guidance=6.0),
    ),
)


def _build_tiny_wan(path: Path) -> None:
    from sora_cli.engines.tiny import build_tiny_wan

    build_tiny_wan(path)


TINY = BuiltinModel(
    name="tiny",
    family="wan",
    description="random-weight Wan 2.1 architecture (2 layers, ~0.3 MB): abstract noise, for tests and demos",
    build=_build_tiny_wan,
    version="2",
    defaults=Defaults(size="256x256", seconds=2, fps=16, steps=4, guidance=5.0),
    pipeline="WanPipeline",
)


def register(registry: Registry) -> None:
    for family in FAMILIES:
        registry.add_family(family)
    registry.add_builtin_model(TINY)
