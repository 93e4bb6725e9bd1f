"""A random-weight LTX-2 (video + audio) pipeline at toy size; see `sora_cli.engines.tiny`.

The components follow diffusers' own LTX-2 test fixtures, with two changes so that the toy behaves like
the real checkpoint where sora-cli depends on it: the video VAE compresses 32x in space and 8x in time
(so sizes are multiples of 32 and frame counts 8k+1, as for LTX-2), and the vocoder's upsampling matches
its sample rate (160 samples per 10 ms mel hop at 16 kHz), so the waveform lasts as long as the video.
The Gemma 3 text encoder is built from a local config: nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: width of the tiny Gemma 3; the connectors and the DiT caption projection take it as their input width
_GEMMA_WIDTH = 32
_GEMMA_LAYERS = 2


def tiny_gemma3(vocab_size: int) -> Any:
    """A two-layer Gemma 3 (with a one-layer SigLIP tower, as the class requires) over `vocab_size` tokens."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(0)
    config = Gemma3Config(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=_GEMMA_WIDTH, intermediate_size=32, num_hidden_layers=_GEMMA_LAYERS,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
            max_position_embeddings=1024, sliding_window=64, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        vision_config=dict(
            hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16,
            patch_size=4,
        ),
        # image-marker tokens just past the byte vocabulary, so no prompt byte is ever taken for an image slot
        mm_tokens_per_image=4, boi_token_index=vocab_size, eoi_token_index=vocab_size + 1,
        image_token_index=vocab_size + 2,
    )
    return Gemma3ForConditionalGeneration(config).eval()


def build_tiny_ltx2(path: Path) -> None:
    """LTX-2 text-to-video-with-audio; `LTX2ImageToVideoPipeline` / `LTX2ConditionPipeline.from_pipe` reuse it."""
    import torch

    from sora_cli.engines import quiet_libraries

    quiet_libraries()
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    from sora_cli.engines.tiny import byte_level_tokenizer

    # the pipeline pads every prompt to max_sequence_length (1024 by default): let the tokenizer allow it
    tokenizer = byte_level_tokenizer(model_max_length=1024)
    text_encoder = tiny_gemma3(len(tokenizer))

    torch.manual_seed(0)
    # LTX-2.0 layout: all Gemma layers (+ embeddings) projected to one width, then a connector per modality
    connectors = LTX2TextConnectors(
        caption_channels=_GEMMA_WIDTH, text_proj_in_factor=_GEMMA_LAYERS + 1,
        video_connector_num_attention_heads=4, video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4, audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_double_precision=False, rope_type="split",
    )

    torch.manual_seed(0)
    # 4x4 patchify, then three 2x2x2 down blocks: 32x spatial, 8x temporal, like the real LTX-2 VAE
    vae = AutoencoderKLLTX2Video(
        latent_channels=8, block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),
        down_block_types=("LTX2VideoDownBlock3D",) * 3, layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1), spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True), decoder_inject_noise=(False,) * 4,
        downsample_type=("spatiotemporal",) * 3, upsample_type=("spatiotemporal",) * 3,
        upsample_residual=(False,) * 3, upsample_factor=(1, 1, 1), patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )

    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, mel_bins=8, sample_rate=16000, mel_hop_length=160,
    )

    torch.manual_seed(0)
    # 4*5*8 = 160 output samples per mel frame at 16 kHz = one 10 ms hop; kernel - stride even keeps lengths exact
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[8, 11, 16], upsample_factors=[4, 5, 8], resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]], output_sampling_rate=16000,
    )

    torch.manual_seed(0)
    # audio_in_channels = audio latent channels (2) x latent mel bins (8 / 4)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
        audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2, audio_attention_head_dim=4,
        audio_cross_attention_dim=8, num_layers=2, caption_channels=_GEMMA_WIDTH, rope_double_precision=False,
        rope_type="split",
    )

    # LTX's resolution-dependent shift (the pipeline always passes `mu`, so the scheduler must take it)
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024, max_image_seq_len=4096,
        shift_terminal=0.1,
    )
    pipe = LTX2Pipeline(
        scheduler=scheduler, vae=vae, audio_vae=audio_vae, text_encoder=text_encoder,
        tokenizer=tokenizer, connectors=connectors, transformer=transformer, vocoder=vocoder,
    )
    pipe.save_pretrained(path, safe_serialization=True)
