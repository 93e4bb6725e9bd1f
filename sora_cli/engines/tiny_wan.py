"""Random-weight Wan image-to-video and VACE pipelines at toy size; see `sora_cli.engines.tiny`.

Wan 2.1 comes in two image-conditioned layouts that diffusers runs through the same
`WanImageToVideoPipeline`, and neither takes both call shapes: the I2V checkpoints accept `image=` only
(with `last_image=` the two CLIP embeddings meet a one-video batch and the transformer fails), the FLF2V
checkpoints (a learned position embedding over *two* CLIP embeddings) require `image=` and `last_image=`.
Wan 2.2 I2V drops CLIP and takes either. One builder per layout, so every call shape has a real model.

The shared text side (byte tokenizer, UMT5) and VAE come from `tiny.py`, imported inside the functions
so that `tiny.py` can re-export these builders without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the tiny CLIP: 32x32 input in 8x8 patches -> 16 patch tokens + 1 class token, 8 wide
_CLIP_IMAGE_SIZE = 32
_CLIP_PATCH = 8
_CLIP_WIDTH = 8
_CLIP_TOKENS = (_CLIP_IMAGE_SIZE // _CLIP_PATCH) ** 2 + 1


def _wan_transformer(cls: Any = None, **overrides: Any) -> Any:
    """The tiny Wan DiT of `build_tiny_wan`, with `overrides` (in_channels, image_dim, VACE layers)."""
    import torch

    if cls is None:
        from diffusers import WanTransformer3DModel as cls

    torch.manual_seed(0)
    config = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    config.update(overrides)
    return cls(**config)


def _tiny_clip() -> tuple[Any, Any]:
    """A CLIP vision tower and its image processor at 32x32, the pair Wan 2.1 I2V/FLF2V expects."""
    import torch
    import transformers
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=_CLIP_WIDTH, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        image_size=_CLIP_IMAGE_SIZE, patch_size=_CLIP_PATCH, projection_dim=_CLIP_WIDTH,
    )).eval()
    # Without torchvision, transformers swaps CLIPImageProcessor for its PIL twin anyway (and says so on
    # stderr): naming the twin keeps the build quiet and records the class that will really load.
    processor_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    processor = processor_cls(size={"shortest_edge": _CLIP_IMAGE_SIZE},
                              crop_size={"height": _CLIP_IMAGE_SIZE, "width": _CLIP_IMAGE_SIZE})
    return encoder, processor


def _save_i2v(path: Path, *, clip: bool, first_last: bool = False, two_experts: bool = False) -> None:
    from sora_cli.engines import quiet_libraries

    quiet_libraries()  # first: importing the Wan I2V module already warns about torchvision
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    from sora_cli.engines.tiny import byte_level_tokenizer, tiny_umt5, tiny_wan_vae

    tokenizer = byte_level_tokenizer()
    text_encoder = tiny_umt5(len(tokenizer))
    image_encoder, image_processor = _tiny_clip() if clip else (None, None)
    image = {}
    if clip:
        # image_dim switches on the image cross-attention; pos_embed_seq_len is the FLF2V marker
        image = {"image_dim": _CLIP_WIDTH, "pos_embed_seq_len": 2 * _CLIP_TOKENS if first_last else None}
    # 36 input channels: 16 noisy latents + 4 frame-mask channels + 16 latents of the conditioning video
    transformer = _wan_transformer(in_channels=36, **image)
    transformer_2 = _wan_transformer(in_channels=36) if two_experts else None
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=tiny_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        image_processor=image_processor, image_encoder=image_encoder, transformer=transformer,
        transformer_2=transformer_2, boundary_ratio=0.9 if two_experts else None,
    )
    pipe.save_pretrained(path, safe_serialization=True)


def build_tiny_wan_i2v(path: Path) -> None:
    """Wan 2.1 I2V layout (CLIP image encoder, 36-channel DiT): `image=` only, like Wan2.1-I2V-14B."""
    _save_i2v(path, clip=True)


def build_tiny_wan_flf2v(path: Path) -> None:
    """Wan 2.1 FLF2V layout (CLIP of both frames + position embedding): needs `image=` and `last_image=`."""
    _save_i2v(path, clip=True, first_last=True)


def build_tiny_wan22_i2v(path: Path) -> None:
    """Wan 2.2 I2V-A14B layout (no CLIP, high- and low-noise experts): `image=`, optionally `last_image=`."""
    _save_i2v(path, clip=False, two_experts=True)


def build_tiny_wan_vace(path: Path) -> None:
    """Wan 2.1 VACE: text-to-video, masked video-to-video (white = generate) and reference images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel

    from sora_cli.engines import quiet_libraries
    from sora_cli.engines.tiny import byte_level_tokenizer, tiny_umt5, tiny_wan_vae

    quiet_libraries()
    tokenizer = byte_level_tokenizer()
    text_encoder = tiny_umt5(len(tokenizer))
    # VACE control input: inactive + reactive video latents (2 x 16) and the mask folded 8x8 into 64 channels
    transformer = _wan_transformer(WanVACETransformer3DModel, vace_layers=[0, 1], vace_in_channels=96)
    pipe = WanVACEPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=tiny_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )
    pipe.save_pretrained(path, safe_serialization=True)
