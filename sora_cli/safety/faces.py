"""Faces, offline: dlib's HOG detector, 5-point landmarks and 128-d ResNet descriptors.

The model files come from the `face-recognition-models` package, located by its folder: importing that package
needs `pkg_resources`, which new setuptools no longer ships. Two descriptors closer than `tolerance` (0.6, dlib's
own cut) are the same person. dlib loads on first use and stays loaded (per process).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.errors import ModelError

TOLERANCE = 0.6
_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in pixels
    score: float  # detector confidence (HOG margin; > 0 is a face)
    landmarks: tuple[tuple[int, int], ...] = ()  # 5 points: eye corners and the base of the nose
    embedding: Any = field(default=None, compare=False, repr=False)  # 128-d numpy vector, or None


@dataclass(frozen=True)
class FaceMatch:
    handle: str | None  # the closest gallery entry within tolerance, else None
    distance: float  # distance to the closest entry (inf with an empty gallery)
    nearest: str | None = None  # the closest entry, within tolerance or not


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("face checks need the face models: pip install face-recognition-models dlib-bin")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _models() -> dict[str, Any]:
    with _LOCK:
        if not _MODELS:
            try:
                import dlib
            except ImportError:
                raise ModelError("face checks need dlib: pip install dlib-bin") from None
            folder = models_dir()
            _MODELS.update(
                detector=dlib.get_frontal_face_detector(),
                landmarks=dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
                encoder=dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat")),
            )
        return _MODELS


def _rgb(image: Any) -> Any:
    import numpy as np

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8) if arr.dtype.kind == "f" else arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


def detect_faces(image: Any, *, upsample: int | None = None, min_score: float = 0.0,
                 embed: bool = True) -> list[Face]:
    """Faces in an HxWx3 uint8 RGB image, best first; with `embed`, each carries its 128-d descriptor.

    `upsample` defaults to 1 for images under 400 px on their short side (HOG finds faces from ~80 px, one
    upsampling halves that, at 3-4x the time), else 0. `min_score` 0 is dlib's own cut.
    """
    import numpy as np

    img = _rgb(image)
    m = _models()
    if upsample is None:
        upsample = 1 if min(img.shape[:2]) < 400 else 0
    rects, scores, _ = m["detector"].run(img, upsample, min_score)
    faces = []
    for rect, score in sorted(zip(rects, scores, strict=True), key=lambda x: -x[1]):
        shape = m["landmarks"](img, rect)
        points = tuple((shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts))
        vector = np.array(m["encoder"].compute_face_descriptor(img, shape), dtype=np.float32) if embed else None
        faces.append(Face((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score), points, vector))
    return faces


def embed_faces(image: Any, **kwargs: Any) -> list[Any]:
    """The 128-d descriptor of each face in the image, best detection first."""
    return [f.embedding for f in detect_faces(image, embed=True, **kwargs)]


def match_face(embedding: Any, gallery: list[tuple[str, Any]], tolerance: float = TOLERANCE) -> FaceMatch:
    """The gallery handle closest to `embedding` (Euclidean distance), if it is within `tolerance`."""
    import numpy as np

    if not gallery:
        return FaceMatch(None, float("inf"))
    vectors = np.stack([np.asarray(v, dtype=np.float32) for _, v in gallery])
    distances = np.linalg.norm(vectors - np.asarray(embedding, dtype=np.float32), axis=1)
    i = int(distances.argmin())
    handle = gallery[i][0]
    distance = float(distances[i])
    return FaceMatch(handle if distance < tolerance else None, distance, handle)
