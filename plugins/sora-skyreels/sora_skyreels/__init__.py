"""sora-skyreels: the SkyReels-V2 family (diffusers' `SkyReelsV2*` pipelines) and the `tiny-skyreels` model.

Registered through `sora_cli.plugins.v1`, the door sora-cli's own built-ins use. Importing this module
is cheap: torch and diffusers are imported only inside `build_tiny_skyreels`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sora_cli.families import BuiltinModel, Defaults, Family
from sora_cli.plugins import Registry
from sora_cli.requests import GenerateRequest, Plan

__all__ = ["FAMILY", "TINY", "SkyReelsFamily", "build_tiny_skyreels", "register"]

# The diffusion-forcing pipelines denoise in windows of `base_num_frames` (97 for the 540P models);
# past that diffusers raises unless `overlap_history` is given. 17 and 20 are its documented picks.
_DF_PREFIX = "SkyReelsV2DiffusionForcing"
_DF_WINDOW = 97
_DF_LONG_VIDEO = {"overlap_history": 17, "addnoise_condition": 20}


class SkyReelsFamily(Family):
    """A Family whose diffusion-forcing pipelines also take `fps=` and, for long videos, window overlap.

    `Family.fps_argument` applies to every class of a family, but only the diffusion-forcing
    pipelines accept `fps` (SkyReelsV2Pipeline would raise on it), so the choice is made per class.
    """

    def plan(self, request: GenerateRequest, **kwargs: Any) -> Plan:
        plan = super().plan(request, **kwargs)
        if plan.pipeline_class.startswith(_DF_PREFIX) and plan.num_frames > _DF_WINDOW:
            notice = (f"{self.label} diffusion forcing makes {plan.num_frames} frames in {_DF_WINDOW}-frame "
                      f"windows overlapping by {_DF_LONG_VIDEO['overlap_history']} frames")
            plan = replace(plan, notices=(*plan.notices, notice))
        return plan

    def call_kwargs(self, plan: Plan) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan)
        if plan.pipeline_class.startswith(_DF_PREFIX):
            kwargs["fps"] = plan.fps  # the 1.3B model embeds it: 16 fps and "not 16" differ
            if plan.num_frames > _DF_WINDOW:
                kwargs.update(_DF_LONG_VIDEO)
        return kwargs


FAMILY = SkyReelsFamily(
    name="skyreels_v2",
    label="SkyReels-V2",
    # the DF pipelines need no image encoder, so any DF checkpoint can become any of them with from_pipe
    pipelines={
        "SkyReelsV2Pipeline": {"t2v": "SkyReelsV2Pipeline"},
        "SkyReelsV2ImageToVideoPipeline": {"i2v": "SkyReelsV2ImageToVideoPipeline",
                                           "extend": "SkyReelsV2ImageToVideoPipeline"},
        **{cls: {"t2v": "SkyReelsV2DiffusionForcingPipeline",
                 "i2v": "SkyReelsV2DiffusionForcingImageToVideoPipeline",
                 "extend": "SkyReelsV2DiffusionForcingImageToVideoPipeline",
                 "v2v": "SkyReelsV2DiffusionForcingVideoToVideoPipeline"}
           for cls in ("SkyReelsV2DiffusionForcingPipeline", "SkyReelsV2DiffusionForcingImageToVideoPipeline",
                       "SkyReelsV2DiffusionForcingVideoToVideoPipeline")},
    },
    frame_step=4,  # AutoencoderKLWan: 2 ** sum(temperal_downsample) = 4
    size_multiple=16,  # check_inputs: VAE factor 8 x patch 2
    # __call__ defaults of every SkyReelsV2 pipeline: 960x544, 97 frames, 50 steps, guidance 6.0 (T2V)
    defaults=Defaults(size="960x544", seconds=4, fps=24, steps=50, guidance=6.0),
    vae_fp32=True,
)


def build_tiny_skyreels(path: Path) -> None:
    """A random-weight SkyReelsV2Pipeline at toy size, built deterministically and saved."""
    import torch
    from diffusers import SkyReelsV2Pipeline, SkyReelsV2Transformer3DModel, UniPCMultistepScheduler
    from sora_cli.engines import quiet_libraries
    from sora_cli.engines.tiny import byte_level_tokenizer, tiny_umt5, tiny_wan_vae

    quiet_libraries()
    tokenizer = byte_level_tokenizer()
    text_encoder = tiny_umt5(len(tokenizer))  # seeds itself
    torch.manual_seed(0)
    transformer = SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    vae = tiny_wan_vae()  # seeds itself
    torch.manual_seed(0)
    # the scheduler SkyReels-V2 checkpoints ship, with the T2V flow shift from diffusers' example
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        flow_shift=8.0)
    pipe = SkyReelsV2Pipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae, scheduler=scheduler,
    )
    pipe.save_pretrained(path, safe_serialization=True)


TINY = BuiltinModel(
    name="tiny-skyreels",
    family=FAMILY.name,
    description="random-weight SkyReels-V2 architecture (2 layers, ~0.3 MB): abstract noise, for tests",
    build=build_tiny_skyreels,
    version="1",
    defaults=Defaults(size="256x256", seconds=2, fps=16, steps=4, guidance=6.0),
    pipeline="SkyReelsV2Pipeline",
)


def register(registry: Registry) -> None:
    registry.add_family(FAMILY)
    registry.add_builtin_model(TINY)
