"""A random-weight Stable Audio Open pipeline at toy size; see `sora_cli.engines.tiny`.

Shaped like stable-audio-open-1.0 where the caller can see it: 44.1 kHz stereo and 2048 samples per
latent step (Oobleck strides 2, 4, 4, 8, 8). Only the latent window is shorter: the DiT always denoises
`sample_size` latent steps and the pipeline crops the decoded waveform afterwards, so the window sets
both the longest clip (512 * 2048 / 44100 = 23.8 s, against 47.6 s for the real model) and the cost of
every call, whatever its length.
"""

from __future__ import annotations

import warnings
from pathlib import Path

SAMPLE_RATE = 44100
#: DiT latent window; the longest clip is SAMPLE_SIZE * 2048 / SAMPLE_RATE seconds
SAMPLE_SIZE = 512


def build_tiny_stable_audio(path: Path) -> None:
    """Stable Audio Open: text to stereo audio, `audio_end_in_s` up to 23.8 s."""
    import torch

    from sora_cli.engines import quiet_libraries

    quiet_libraries()
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    from sora_cli.engines.tiny import byte_level_tokenizer

    # the pipeline pads every prompt to the tokenizer's model_max_length (128 for the real T5)
    tokenizer = byte_level_tokenizer(model_max_length=128)
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()

    torch.manual_seed(0)
    # seconds_start / seconds_end are embedded over [min_value, max_value]; 512 as in the real model
    projection_model = StableAudioProjectionModel(
        text_encoder_dim=text_encoder.config.d_model, conditioning_dim=8, min_value=0, max_value=512,
    )

    torch.manual_seed(0)
    # global input = the two seconds embeddings side by side (2 x conditioning_dim)
    transformer = StableAudioDiTModel(
        sample_size=SAMPLE_SIZE, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=4,
        num_attention_heads=2, num_key_value_attention_heads=1, cross_attention_dim=8, time_proj_dim=8,
        global_states_input_dim=16, cross_attention_input_dim=8,
    )

    torch.manual_seed(0)
    with warnings.catch_warnings():  # Oobleck still uses the old torch weight_norm, which says so on stderr
        warnings.simplefilter("ignore", FutureWarning)
        vae = AutoencoderOobleck(
            encoder_hidden_size=4, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
            decoder_channels=4, decoder_input_channels=4, audio_channels=2, sampling_rate=SAMPLE_RATE,
        )

    # The real checkpoint ships CosineDPMSolverMultistepScheduler, which needs `torchsde`; the EDM solver
    # is the one the pipeline is typed for and runs on plain torch.
    scheduler = EDMDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential",
    )
    pipe = StableAudioPipeline(
        vae=vae, text_encoder=text_encoder, projection_model=projection_model, tokenizer=tokenizer,
        transformer=transformer, scheduler=scheduler,
    )
    pipe.save_pretrained(path, safe_serialization=True)
