"""Checks on pictures: sampled frames of a made video, and the photo or clip given to animate-image or remix.

    report = check_frames(clip.frames, gallery=cameos, permitted={"@me"}, policy=moderator.policy)
    report.enforce()         # PolicyRefusal (exit 5) when the video must be blocked: nudity, or a face
                             # matching an enrolled cameo the requester may not use
    check_input_faces(photo, gallery=cameos, permitted={"@me"}, attest_consent=False).enforce()
                             # a real face needs a permitted matching cameo, or --attest-consent

`gallery` is a list of (handle, 128-d descriptor) pairs the caller provides (the enrolled cameos); `permitted` the
handles this requester may use. Faces matching no cameo do not block a generated video (models invent faces);
in an input they need consent. nudenet and dlib load on first use and stay loaded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.errors import ModelError, PolicyRefusal
from sora_cli.safety.faces import TOLERANCE, detect_faces, match_face

NUDITY_CLASSES = ("FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED",
                  "ANUS_EXPOSED")
_DETECTOR: list[Any] = []
_LOCK = threading.Lock()


def nudity_detector() -> Any:
    """nudenet's NudeDetector (it ships its 320n ONNX model), loaded once per process, on a quiet session."""
    with _LOCK:
        if not _DETECTOR:
            try:
                import nudenet
            except ImportError:
                raise ModelError("frame checks need nudenet: pip install nudenet") from None
            _DETECTOR.append(_quiet_detector(nudenet))
        return _DETECTOR[0]


def _quiet_detector(nudenet: Any) -> Any:
    """nudenet's detector on an onnxruntime session with one thread that does not spin while it waits. The check
    runs beside the pipeline's load and the video's encode, where the default pool's spinning burns a core: 4 frames
    cost 0.11 s of CPU this way against 0.24-0.31 s. nudenet's constructor takes no session options, so the session
    is built here, and `_Detector` reads the model's answer with nudenet's own steps (nudenet 3.4); anything else
    falls back to nudenet's detector as it comes."""
    import onnxruntime

    model = Path(nudenet.__file__).parent / "320n.onnx"
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        return _Detector(nudenet.nudenet, session)
    except Exception:  # noqa: BLE001 - a nudenet or onnxruntime this was not written for: its own defaults
        return nudenet.NudeDetector()


class _Detector:
    """nudenet's `NudeDetector.detect` with its box decoding in numpy. nudenet decodes the model's 2,100 candidate
    boxes one by one in Python (~6 ms a frame, beside ~22 ms for the model); here the same arithmetic runs on
    arrays, and its own steps pad and scale the picture and drop overlapping boxes, so the detections are nudenet's,
    value for value (tests/test_safety_faces.py compares them). A frame takes 23 ms instead of 29 ms."""

    def __init__(self, module: Any, session: Any, size: int = 320):
        import cv2  # nudenet's own dependency, imported by it already

        self.onnx_session, self.size = session, size
        self.input_name = session.get_inputs()[0].name
        self._read, self._labels, self._nms = module._read_image, getattr(module, "__labels"), cv2.dnn.NMSBoxes

    def detect(self, bgr: Any) -> list[dict[str, Any]]:
        blob, _, _, x_pad, y_pad, width, height = self._read(bgr, self.size)
        return self.decode(self.onnx_session.run(None, {self.input_name: blob}), x_pad, y_pad, width, height)

    def decode(self, output: Any, x_pad: int, y_pad: int, width: int, height: int) -> list[dict[str, Any]]:
        """The model's output as detections in the picture's pixels, as nudenet's `_postprocess` gives them."""
        import numpy as np

        rows = np.transpose(np.squeeze(output[0]))
        scores = rows[:, 4:]
        best = scores.max(axis=1)
        keep = best >= 0.2
        rows, best, classes = rows[keep], best[keep], scores[keep].argmax(axis=1)
        w, h = rows[:, 2], rows[:, 3]
        x, y = rows[:, 0] - w / 2, rows[:, 1] - h / 2  # centre to top-left, then to the picture's scale
        x, y = x * (width + x_pad) / self.size, y * (height + y_pad) / self.size
        w, h = w * (width + x_pad) / self.size, h * (height + y_pad) / self.size
        x, y = np.clip(x, 0, width), np.clip(y, 0, height)
        w, h = np.minimum(w, width - x), np.minimum(h, height - y)
        boxes = np.stack([x, y, w, h], axis=1)
        picked = self._nms(boxes.tolist(), best.tolist(), 0.25, 0.45) if len(boxes) else []
        return [{"class": self._labels[int(classes[i])], "score": float(best[i]),
                 "box": [int(v) for v in boxes[i]]} for i in picked]


@dataclass(frozen=True)
class NudityHit:
    frame: int
    label: str
    score: float


@dataclass(frozen=True)
class CameoHit:
    frame: int
    handle: str
    distance: float
    permitted: bool


@dataclass(frozen=True)
class FrameReport:
    frames: tuple[int, ...]  # the indices checked
    nudity: tuple[NudityHit, ...] = ()
    faces: int = 0  # faces found over the checked frames
    cameos: tuple[CameoHit, ...] = ()
    blocked: bool = False
    reasons: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if not self.blocked:
            return f"frames passed ({len(self.frames)} checked, {self.faces} faces)"
        return "video blocked by policy: " + "; ".join(self.reasons)

    def enforce(self) -> FrameReport:
        if self.blocked:
            raise PolicyRefusal(self.message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"blocked": self.blocked, "reasons": list(self.reasons), "frames": list(self.frames),
                "faces": self.faces, "nudity": [vars(h) for h in self.nudity],
                "cameos": [vars(h) for h in self.cameos], "seconds": self.seconds}


@dataclass(frozen=True)
class InputFaceReport:
    allowed: bool
    message: str
    faces: int = 0
    cameos: tuple[str, ...] = ()  # permitted cameos the input's faces matched
    attested_consent: bool = False  # faces matched no cameo and the requester attested consent

    def enforce(self) -> InputFaceReport:
        if not self.allowed:
            raise PolicyRefusal(self.message)
        return self

    def to_dict(self) -> dict[str, Any]:
        """What the manifest records about the input's faces (never the descriptors)."""
        return {"faces": self.faces, "cameos": list(self.cameos), "attested_consent": self.attested_consent}


def sample_indices(count: int, sample: int) -> list[int]:
    """`sample` frame indices spread evenly from the first to the last frame."""
    if count <= 0:
        return []
    if sample >= count:
        return list(range(count))
    if sample <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (sample - 1)) for i in range(sample)})


def _frames(frames: Any) -> Any:
    import numpy as np

    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected frames shaped [F, H, W, 3], got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return arr[..., :3]


def frames_to_check(count: int, fps: float | None, policy: Any = None) -> int:
    """How many frames a video of `count` frames at `fps` gets checked on: a fixed number if the policy says so,
    else `per_second` of video within `min`..`max` (2 a second, 4 to 16 by default: a 1 s clip is checked every
    quarter second, a 10 s one on 16 frames)."""
    if policy is not None and policy.frame_sample:
        return policy.frame_sample
    rate, low, high = (policy.frame_rate, policy.frame_min, policy.frame_max) if policy else (2.0, 4, 16)
    if not fps:
        return high
    return max(low, min(high, math.ceil(count / fps * rate)))


def check_frames(frames: Any, *, gallery: Iterable[tuple[str, Any]] = (), permitted: Iterable[str] = (),
                 sample: int | None = None, policy: Any = None, nudity: bool = True, faces: bool = True,
                 detector: Any = None, fps: float | None = None) -> FrameReport:
    """Nudity and cameo faces on evenly spread frames of a [F, H, W, 3] video (uint8, or float 0..1): `sample`
    of them, else as many as `frames_to_check` gives for its length (`fps`).

    Thresholds come from `policy` (a safety Policy) when given, else the shipped defaults. `detector` replaces
    nudenet's (anything with nudenet's `detect(bgr_image) -> [{"class", "score", "box"}]`).
    """
    arr = _frames(frames)
    sample = sample or frames_to_check(len(arr), fps, policy)
    classes = set(policy.nudity_classes if policy else NUDITY_CLASSES)
    threshold = policy.nudity_threshold if policy else 0.5
    tolerance = policy.face_tolerance if policy else TOLERANCE
    gallery, allowed = list(gallery), set(permitted)
    indices = sample_indices(len(arr), sample)
    nude: list[NudityHit] = []
    cameos: list[CameoHit] = []
    found = 0
    seconds = {"nudity": 0.0, "faces": 0.0}
    for i in indices:
        frame = arr[i]
        if nudity:
            started = time.perf_counter()
            for det in (detector or nudity_detector()).detect(frame[..., ::-1].copy()):
                if det["class"] in classes and det["score"] >= threshold:
                    nude.append(NudityHit(i, det["class"], round(float(det["score"]), 3)))
            seconds["nudity"] += time.perf_counter() - started
        if faces:
            started = time.perf_counter()
            for face in detect_faces(frame, embed=bool(gallery)):
                found += 1
                match = match_face(face.embedding, gallery, tolerance) if gallery else None
                if match is not None and match.handle is not None:
                    cameos.append(CameoHit(i, match.handle, round(match.distance, 3), match.handle in allowed))
            seconds["faces"] += time.perf_counter() - started
    reasons = []
    if nude:
        top = max(nude, key=lambda h: h.score)
        reasons.append(f"nudity ({top.label} {top.score:.2f} in frame {top.frame})")
    for handle in dict.fromkeys(h.handle for h in cameos if not h.permitted):
        hit = min((h for h in cameos if h.handle == handle), key=lambda h: h.distance)
        reasons.append(f"the face of {handle}, whose cameo this requester may not use (frame {hit.frame}, "
                       f"distance {hit.distance:.2f})")
    return FrameReport(tuple(indices), tuple(nude), found, tuple(cameos), bool(reasons), tuple(reasons),
                       {k: round(v, 3) for k, v in seconds.items()})


def check_input_faces(image: Any, *, gallery: Iterable[tuple[str, Any]] = (), permitted: Iterable[str] = (),
                      attest_consent: bool = False, sample: int = 4, tolerance: float = TOLERANCE) -> InputFaceReport:
    """May this photo (HxWx3) or clip ([F, H, W, 3]) be animated or remixed by this requester?

    Every face must match a cameo the requester may use; a face matching an enrolled cameo they may not use is
    refused even with `attest_consent`; a face matching no cameo needs `attest_consent`.
    """
    arr = _frames(image)
    gallery, allowed = list(gallery), set(permitted)
    total, matched, strangers, forbidden = 0, [], 0, []
    for i in sample_indices(len(arr), sample):
        for face in detect_faces(arr[i]):
            total += 1
            match = match_face(face.embedding, gallery, tolerance)
            if match.handle is None:
                strangers += 1
            elif match.handle in allowed:
                matched.append(match.handle)
            else:
                forbidden.append(match.handle)
    cameos = tuple(dict.fromkeys(matched))
    if forbidden:
        who = ", ".join(dict.fromkeys(forbidden))
        return InputFaceReport(False, f"refused by policy: the input shows {who}, whose cameo you may not use",
                               total, cameos)
    if strangers and not attest_consent:
        return InputFaceReport(False, "refused by policy: the input shows a real face that matches no cameo you "
                               "may use; pass --attest-consent if you have that person's consent", total, cameos)
    note = "; consent attested" if strangers else ""
    return InputFaceReport(True, f"input faces: {total} ({', '.join(cameos) or 'no cameo'}){note}", total, cameos,
                           attested_consent=bool(strangers))
