"""MiniLM in numpy: the vectors are BERT's (checked against transformers' BertModel on the same weights), and a
prompt check loads neither torch nor transformers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sora_cli.safety.embed import MiniLM, model_dir

TEXTS = ["a chef cutting onions with a sharp knife",
         "a red fox running through fresh snow at golden hour, 35mm lens, slow dolly in towards its face",
         "x",
         "Một cô gái đạp xe qua cánh đồng lúa chín"]  # batched: three lengths of padding, and bytes MiniLM rarely sees


@pytest.fixture(scope="module")
def encoder() -> MiniLM:
    return MiniLM()


def reference_vectors(encoder: MiniLM, texts: list[str]) -> np.ndarray:
    """sentence-transformers' recipe on transformers' BertModel: mean pooling over the mask, then L2."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir())).eval()
    enc = encoder.tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc]).unsqueeze(-1).float()
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask[..., 0].long(), token_type_ids=torch.zeros_like(ids))[0]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_numpy_vectors_are_berts(encoder: MiniLM) -> None:
    ours, theirs = encoder.encode(TEXTS), reference_vectors(encoder, TEXTS)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5
    assert (ours * theirs).sum(1).min() > 0.99999
    # and a batch pads without changing a text's vector
    assert np.abs(encoder.encode(TEXTS[:1]) - ours[:1]).max() < 1e-5


def test_word_shares_sum_to_the_vector(encoder: MiniLM) -> None:
    vector, words, shares = encoder.encode_words(TEXTS[0])
    assert words == ["a", "chef", "cutting", "onions", "with", "a", "sharp", "knife"]
    assert np.abs(vector - encoder.encode(TEXTS[:1])[0]).max() < 1e-5
    # the words' shares plus [CLS] and [SEP] make the unit vector: the words alone carry most of it
    assert 0.5 < float(shares.sum(0) @ vector) < 1.0


def test_a_prompt_check_loads_neither_torch_nor_transformers(tmp_path) -> None:
    code = ("import sys; from sora_cli.cli.app import app; sys.argv = ['sora', 'policy', 'check', "
            "'a chef cutting onions with a sharp knife', '--json']\n"
            "try:\n    app()\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules), "
            "code, file=sys.stderr)")
    env = {**os.environ, "SORA_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert '"allowed": true' in done.stdout, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == "HEAVY= 0", done.stderr


class CountingMiniLM(MiniLM):
    """The real encoder, counting the sentences it is asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        self.encoded += texts
        return super().encode(texts, batch)


def test_the_shipped_vectors_are_the_default_policys(encoder: MiniLM) -> None:
    """Every sentence of the shipped policy has a shipped vector made by this model (after editing the policy's
    examples or anchors: python -m sora_cli.safety.embed), and they are the vectors MiniLM makes."""
    from sora_cli.safety.embed import policy_sentences, shipped_vectors
    from sora_cli.safety.policy import build_policy, default_policy_path, read_toml

    shipped = shipped_vectors(encoder.key)
    missing = set(policy_sentences(build_policy(read_toml(default_policy_path(), "p")))) - set(shipped)
    assert not missing, f"{len(missing)} policy sentences have no shipped vector: run python -m sora_cli.safety.embed"
    sample = sorted(shipped)[::200]
    fresh = encoder.encode(sample)
    assert np.abs(np.stack([shipped[t] for t in sample]) - fresh).max() < 2e-3  # float16


def test_a_fresh_machine_encodes_only_the_sentences_an_admin_added(tmp_path) -> None:
    from sora_cli.safety import Moderator
    from sora_cli.safety.policy import build_policy, default_policy_path, read_toml

    data = read_toml(default_policy_path(), "p")
    counting = CountingMiniLM()
    Moderator(build_policy(data), cache_dir=tmp_path / "cache", encoder=counting).warm_up()
    assert counting.encoded == []  # the first check on a new machine waits for no encoding
    added = "a lighthouse keeper painting the railings on a windy morning"
    data["anchors"]["benign"] = [*data["anchors"]["benign"], added]
    Moderator(build_policy(data), cache_dir=tmp_path / "cache", encoder=counting).warm_up()
    assert counting.encoded == [added]
    Moderator(build_policy(data), cache_dir=tmp_path / "cache", encoder=counting).warm_up()
    assert len(counting.encoded) == 1  # the admin's sentence is in the cache folder now
