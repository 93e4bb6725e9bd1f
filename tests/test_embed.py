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
