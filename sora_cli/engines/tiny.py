"""Random-weight pipelines built offline, deterministically, then saved with `save_pretrained`.

They are architecturally real (diffusers' own components at toy size, as in diffusers' tests) but
their weights are random: the videos they make are abstract noise. They exist so that every path,
loading included, runs with no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The other tiny families live beside this module (they import the helpers below lazily, so no cycle).
from sora_cli.engines.tiny_audio import build_tiny_stable_audio
from sora_cli.engines.tiny_ltx2 import build_tiny_ltx2
from sora_cli.engines.tiny_wan import (
    build_tiny_wan22_i2v,
    build_tiny_wan_flf2v,
    build_tiny_wan_i2v,
    build_tiny_wan_vace,
)

__all__ = [
    "build_tiny_ltx2", "build_tiny_stable_audio", "build_tiny_wan", "build_tiny_wan22_i2v", "build_tiny_wan_flf2v",
    "build_tiny_wan_i2v", "build_tiny_wan_vace", "byte_level_tokenizer", "tiny_umt5", "tiny_wan_vae",
]


def byte_level_tokenizer(model_max_length: int = 512) -> Any:
    """A T5-style fast tokenizer over the 256 byte symbols: pad id 0, `</s>` appended to every text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):  # a set: sort for a stable vocabulary
        vocab[symbol] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_max_length=model_max_length,
    )


def tiny_umt5(vocab_size: int, d_model: int = 32) -> Any:
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    config = UMT5Config(
        vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config).eval()


def tiny_wan_vae() -> Any:
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )


def build_tiny_wan(path: Path) -> None:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    from sora_cli.engines import quiet_libraries

    quiet_libraries()
    tokenizer = byte_level_tokenizer()
    text_encoder = tiny_umt5(len(tokenizer))
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=tiny_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    pipe.save_pretrained(path, safe_serialization=True)
