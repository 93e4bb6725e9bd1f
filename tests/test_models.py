"""Models: the built-in tiny model, real `from_pretrained` loading, aliases, plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import torch
from conftest import FAST, json_lines
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

from sora_cli.builtin import TINY
from sora_cli.config import Paths
from sora_cli.engines.tiny import byte_level_tokenizer, tiny_umt5, tiny_wan_vae
from sora_cli.media.probe import probe
from sora_cli.models import builtin_folder
from sora_cli.plugins import load_registry


def _diffusers_saved_wan(folder) -> None:
    """Saved by diffusers' own save_pretrained, with a config our builder never makes (1 layer, 4 heads)."""
    tokenizer = byte_level_tokenizer()
    torch.manual_seed(1)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=8, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=64, ffn_dim=48, num_layers=1, cross_attn_norm=False, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=tiny_umt5(len(tokenizer)), transformer=transformer,
                       vae=tiny_wan_vae(), scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.save_pretrained(folder)


def test_a_pipeline_saved_by_diffusers_loads_by_path_and_by_alias(sora, tmp_path):
    folder = tmp_path / "my-wan"
    _diffusers_saved_wan(folder)
    out = tmp_path / "a.mp4"
    result = sora("generate", "a lantern", "--model", folder, "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["pipeline"] == "WanPipeline"
    assert probe(out).frames == 9
    assert sora("models", "add", "mine", folder).exit_code == 0
    rows = {r["name"]: r for r in json_lines(sora("models", "list", "--json").stdout)}
    assert rows["mine"]["family"] == "wan" and rows["mine"]["tasks"] == ["t2v", "v2v"]
    assert rows["tiny"]["source"] == "builtin" and "random-weight" in rows["tiny"]["description"]
    result = sora("generate", "a lantern", "--model", "mine", "-o", tmp_path / "b.mp4", "--json", *FAST)
    assert result.exit_code == 0 and json.loads(result.stdout)["model"] == "mine"
    assert sora("models", "remove", "mine").exit_code == 0
    assert "mine" not in {r["name"] for r in json_lines(sora("models", "list", "--json").stdout)}


def test_tiny_is_deterministic_and_rebuilt_when_damaged(sora):
    shown = json.loads(sora("models", "show", "tiny", "--json").stdout)
    folder = builtin_folder(TINY, Paths.from_env().models_cache)
    assert shown["location"] == str(folder)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-10] + b"0123456789")  # damaged in place
    again = json.loads(sora("models", "show", "tiny", "--json").stdout)
    assert weights.read_bytes() == good and again["hash"] == shown["hash"]
    weights.unlink()  # missing
    assert json.loads(sora("models", "show", "tiny", "--json").stdout)["hash"] == shown["hash"]


def test_aliases_are_validated_and_cannot_shadow_builtins(sora, tmp_path):
    result = sora("models", "add", "tiny", tmp_path)
    assert result.exit_code == 2 and "built-in" in result.stderr
    result = sora("models", "add", "x", tmp_path)
    assert result.exit_code == 1 and "model_index.json" in result.stderr


def test_builtins_come_through_the_entry_point_and_a_broken_plugin_is_a_warning():
    registry = load_registry()
    assert "builtin" in registry.plugins and {"wan", "ltx", "ltx2", "cogvideox", "hunyuan"} <= set(
        registry.families)
    group = "sora_cli.plugins.v1"
    eps = [
        EntryPoint("builtin", "sora_cli.builtin", group),
        EntryPoint("missing", "no_such_plugin_module", group),
        EntryPoint("raises", "json:loads", group),  # register(registry) raises TypeError
    ]
    registry = load_registry(eps)
    assert registry.plugins == ["builtin"] and "wan" in registry.families
    assert len(registry.warnings) == 2 and all("failed to load" in w for w in registry.warnings)


def test_a_hub_id_loads_from_the_local_hugging_face_cache(tmp_path, home):
    """The hub-id path offline: a snapshot laid out as huggingface_hub keeps it, loaded by id.

    A subprocess, because huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at import.
    """
    cache = tmp_path / "hf"
    repo = cache / "models--acme--tiny-wan"
    _diffusers_saved_wan(repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    out = tmp_path / "hub.mp4"
    env = {**os.environ, "SORA_HOME": str(home), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    sora_exe = Path(sys.executable).parent / "sora"
    result = subprocess.run([str(sora_exe), "generate", "a lantern", "--model", "acme/tiny-wan", "-o", str(out),
                             "--json", *FAST], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    video = json.loads(result.stdout)
    assert video["model"] == "acme/tiny-wan" and video["model_hash"].startswith("sha256:")
    assert probe(out).frames == 9
