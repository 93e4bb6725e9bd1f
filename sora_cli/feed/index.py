"""A server's caption vectors in memory: one float32 matrix, a row per published video, so a warm browse of
10,000 videos neither reads a cache file nor stacks 10,000 arrays (see bench/feed_server.py).

    index = CaptionIndex()                       # MiniLM loads on the first encode, not at start-up
    index.add({"video_1": vector})               # at publish (or on first browse, from the store's blobs)
    vectors = index.rows(ids, missing=load)      # [N, 384] in the order of `ids`; `load` fills the gaps
    facets = index.embed(facets)                 # steer topics, kept in memory once encoded

Thread-safe: routes run on a thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from sora_cli.feed.steer import Facet

DIM = 384
MAX_TOPICS = 4096  # steer topics and see-less captions remembered; beyond, the oldest half is forgotten


class CaptionIndex:
    def __init__(self, load_encoder: Callable[[], Any] | None = None):
        self._load_encoder = load_encoder
        self._encoder: Any = None
        self._lock = threading.Lock()
        self._encoding = threading.Lock()  # one MiniLM call at a time (it uses every core already)
        self._row: dict[str, int] = {}
        self._matrix: Any = None
        self._topics: dict[str, Any] = {}

    def encoder(self) -> Any:
        with self._encoding:
            if self._encoder is None:
                if self._load_encoder is None:
                    from sora_cli.feed.browse import load_encoder

                    self._load_encoder = load_encoder
                self._encoder = self._load_encoder()
            return self._encoder

    def encode(self, texts: Sequence[str]) -> Any:
        """[N, 384] float32 unit vectors (MiniLM)."""
        import numpy as np

        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        encoder = self.encoder()
        with self._encoding:
            return np.asarray(encoder.encode(list(texts)), dtype=np.float32)

    def add(self, vectors: dict[str, Any]) -> None:
        import numpy as np

        with self._lock:
            for video_id, vector in vectors.items():
                row = self._row.get(video_id)
                if row is None:
                    row = len(self._row)
                    if self._matrix is None or row >= len(self._matrix):
                        grown = np.zeros((max(1024, 2 * row), DIM), dtype=np.float32)
                        if self._matrix is not None:
                            grown[:len(self._matrix)] = self._matrix
                        self._matrix = grown
                    self._row[video_id] = row
                self._matrix[row] = np.asarray(vector, dtype=np.float32)

    def get(self, video_id: str) -> Any:
        with self._lock:
            row = self._row.get(video_id)
            return None if row is None else self._matrix[row].copy()

    def rows(self, ids: Sequence[str], missing: Callable[[list[str]], dict[str, Any]]) -> Any:
        """The vectors of `ids`, in order; `missing(ids)` returns those the index lacks (an unpublished video's
        row stays until the process ends: a few KB, and a re-publish finds it)."""
        import numpy as np

        with self._lock:
            need = [i for i in ids if i not in self._row]
        if need:
            self.add(missing(need))
        with self._lock:
            return self._matrix[np.fromiter((self._row[i] for i in ids), np.int64, len(ids))] if ids else \
                np.zeros((0, DIM), dtype=np.float32)

    def embed(self, facets: Sequence[Facet], known: dict[str, Any] | None = None) -> tuple[Facet, ...]:
        """The facets with topic vectors: from `known` (a see-less caption's item vector), memory, or MiniLM."""
        known = known or {}
        with self._lock:
            new = list(dict.fromkeys(f.topic for f in facets if f.vector is None and f.topic not in known
                                     and f.topic not in self._topics))
        if new:
            encoded = self.encode(new)
            with self._lock:
                if len(self._topics) + len(new) > MAX_TOPICS:
                    for topic in list(self._topics)[:len(self._topics) // 2]:
                        del self._topics[topic]
                self._topics.update(zip(new, encoded, strict=True))
        with self._lock:
            return tuple(f if f.vector is not None else
                         replace(f, vector=known[f.topic] if f.topic in known else self._topics[f.topic])
                         for f in facets)
