"""The liveness check at enrolment: a random challenge of head turns, checked in the clip from face landmarks.

What is measured, per sampled frame (at most SAMPLE_FPS frames a second, at most MAX_FRAMES in all):
- faces: dlib's HOG detector; every frame must show at most one face, and most frames (1 - MAX_MISSING) one face.
- yaw: from dlib's 68-point landmarks, the nose tip's horizontal offset from the face's midline as a fraction of
  the half-width, averaged over two midlines (jaw ends 0/16 and outer eye corners 36/45). For a roughly
  cylindrical head that fraction is sin(yaw); we report asin of it in degrees. Positive = the person turned to
  their own left, as an unmirrored camera sees it (`mirrored=True` for selfie recordings that flip the image).
- identity: the 128-d descriptor on up to MAX_EMBED frames spread over the clip (always the turn peaks); every
  one must be within dlib's 0.6 of the mean of the frontal frames.
The turns seen are the runs of frames beyond +-TURN_DEG, separated by frames back within CENTRE_DEG of centre;
they must equal the challenge's list, in order. A photo held still reads flat; a printed photo tilted left and
right reads under 3 degrees (a flat picture has no nose sticking out of it), against ~15 for a turned head.

What it does not do: the spoken phrase is stored with the consent record but not checked (no offline speech
recogniser); and a synthesised video of someone turning their head (a deepfake) would pass — the check stops
photos and recordings of an earlier challenge (1 chance in 14 that one matches a new challenge of 4 turns),
nothing more.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

TURNS = 4
TURN_DEG = 10.0
CENTRE_DEG = 6.0
SAMPLE_FPS = 8.0
MAX_FRAMES = 120
MAX_SECONDS = 20.0  # of a clip read for enrolment
MAX_SIDE = 720  # frames are analysed at most this big: selfie faces are large, HOG time grows with pixels
MAX_EMBED = 12
MAX_MISSING = 0.25
CHALLENGE_TTL = 15 * 60
IDENTITY_TOLERANCE = 0.6
WORDS = ("amber", "anchor", "apple", "arrow", "bamboo", "basket", "beacon", "bicycle", "blossom", "bridge", "butter",
         "candle", "canyon", "carpet", "castle", "cedar", "cherry", "clover", "comet", "copper", "coral", "cotton",
         "crystal", "desert", "dolphin", "ember", "falcon", "feather", "forest", "garden", "ginger", "glacier",
         "harbor", "hazel", "honey", "island", "jasmine", "kettle", "lantern", "lemon", "meadow", "marble",
         "mirror", "morning", "nutmeg", "orange", "orchid", "otter", "pebble", "pepper", "planet", "river",
         "saddle", "silver", "sparrow", "spruce", "summer", "thunder", "tiger", "tulip", "velvet", "violet",
         "willow", "window")
_LANDMARKS: list[Any] = []
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Challenge:
    id: str
    turns: tuple[str, ...]
    phrase: str
    issued_at: float
    expires_at: float

    def instructions(self) -> str:
        steps = ", then ".join(f"turn your head to your {t} and back" for t in self.turns)
        return (f"Record a clip of your face alone, facing the camera: {steps}. Hold each turn for about a "
                f"second. Then say: \"{self.phrase}\".")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "turns": list(self.turns), "phrase": self.phrase, "issued_at": self.issued_at,
                "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Challenge:
        return cls(str(data["id"]), tuple(data["turns"]), str(data["phrase"]), float(data["issued_at"]),
                   float(data["expires_at"]))


def new_challenge(turns: int = TURNS, ttl: float = CHALLENGE_TTL, clock: float | None = None) -> Challenge:
    """A fresh random challenge from the OS's CSPRNG."""
    now = time.time() if clock is None else clock
    while True:  # both directions in every challenge: "left, left, left, left" is no test of anything
        sequence = tuple(secrets.choice(("left", "right")) for _ in range(turns))
        if len(set(sequence)) == 2 or turns < 2:
            break
    phrase = " ".join(secrets.choice(WORDS) for _ in range(4))
    return Challenge(secrets.token_hex(8), sequence, phrase, now, now + ttl)


@dataclass
class LivenessReport:
    passed: bool
    reason: str
    frames: int = 0  # frames checked
    missing: int = 0  # frames with no face
    yaw: list[tuple[float, float | None]] = field(default_factory=list)  # (seconds, degrees or None)
    turns_seen: tuple[str, ...] = ()
    peaks_deg: tuple[float, ...] = ()
    identity_max_distance: float | None = None
    mirrored: bool = False
    embedding: Any = field(default=None, repr=False)  # mean descriptor of the frontal frames (never serialised)
    references: list[Any] = field(default_factory=list, repr=False)  # face crops (never serialised)

    def summary(self) -> dict[str, Any]:
        """What the consent record keeps: figures, never a face or descriptor."""
        return {"passed": self.passed, "frames": self.frames, "missing": self.missing,
                "turns_seen": list(self.turns_seen), "peaks_deg": list(self.peaks_deg),
                "identity_max_distance": self.identity_max_distance, "mirrored": self.mirrored}


def _predictor() -> Any:
    with _LOCK:
        if not _LANDMARKS:
            import dlib

            from sora_cli.safety.faces import models_dir

            _LANDMARKS.append(dlib.shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat")))
        return _LANDMARKS[0]


def yaw_degrees(points: Any) -> float:
    """Head yaw from 68 landmarks (x, y): asin of the nose's offset from the midline over the half-width."""
    nose = points[30][0]
    ratios = []
    for left, right in ((0, 16), (36, 45)):
        lx, rx = points[left][0], points[right][0]
        width = rx - lx
        if width > 0:
            ratios.append(((nose - lx) - (rx - nose)) / width)
    ratio = sum(ratios) / len(ratios) if ratios else 0.0
    return math.degrees(math.asin(max(-1.0, min(1.0, ratio))))


def _segments(yaws: list[float | None]) -> list[tuple[str, list[int]]]:
    """Runs of turned frames ("left"/"right", frame indices); a new run starts only after a return to centre."""
    runs: list[tuple[str, list[int]]] = []
    centred = True
    for i, y in enumerate(yaws):
        if y is None:
            continue
        if abs(y) <= CENTRE_DEG:
            centred = True
        elif abs(y) >= TURN_DEG:
            side = "left" if y > 0 else "right"
            if runs and not centred and runs[-1][0] == side:
                runs[-1][1].append(i)
            else:
                runs.append((side, [i]))
                centred = False
    return runs


def _crop(frame: Any, box: tuple[int, int, int, int]) -> Any:
    """A square crop around the face, twice its size: the head and some context, for conditioning."""
    left, top, right, bottom = box
    side = int(max(right - left, bottom - top) * 2)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    h, w = frame.shape[:2]
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    return frame[y0:min(h, y0 + side), x0:min(w, x0 + side)].copy()


def _analysis_image(frame: Any) -> tuple[Any, float]:
    """The frame as uint8 RGB, scaled down to MAX_SIDE on its long side: (image, scale)."""
    import numpy as np
    from PIL import Image

    from sora_cli.safety.faces import _rgb

    img = _rgb(frame)
    h, w = img.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return img, 1.0
    small = Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(small)), scale


def _descriptor(models: dict[str, Any], found: Any) -> Any:
    import numpy as np

    img, shape, _ = found
    return np.array(models["encoder"].compute_face_descriptor(img, shape), dtype=np.float32)


def check_clip(frames: Any, fps: float, challenge: Challenge, *, mirrored: bool = False,
               clock: float | None = None) -> LivenessReport:
    """Check a clip ([F, H, W, 3] uint8 RGB at `fps`) against `challenge`; a failure is `passed=False` + reason."""
    import numpy as np

    from sora_cli.safety.faces import _models, _rgb
    from sora_cli.safety.frames import sample_indices

    if (time.time() if clock is None else clock) > challenge.expires_at:
        return LivenessReport(False, "the challenge has expired: run `sora cameo challenge` for a new one")
    count = len(frames)
    wanted = min(MAX_FRAMES, max(1, int(count / max(fps, 1e-6) * SAMPLE_FPS)))
    indices = sample_indices(count, wanted)
    models, predictor = _models(), _predictor()
    yaws: list[float | None] = []
    shapes: list[tuple[Any, Any, Any] | None] = []  # (image, shape, box)
    for n, i in enumerate(indices):
        img, scale = _analysis_image(frames[i])
        rects, _scores, _ = models["detector"].run(img, 1 if min(img.shape[:2]) < 400 else 0, 0.0)
        if len(rects) > 1:
            return LivenessReport(False, f"{len(rects)} faces at {i / fps:.1f} s: the clip must show one face only",
                                  frames=n + 1)
        if not rects:
            yaws.append(None)
            shapes.append(None)
            continue
        shape = predictor(img, rects[0])
        points = [(shape.part(k).x, shape.part(k).y) for k in range(68)]
        yaw = yaw_degrees(points)
        yaws.append(-yaw if mirrored else yaw)
        box = tuple(round(v / scale) for v in (rects[0].left(), rects[0].top(), rects[0].right(), rects[0].bottom()))
        shapes.append((img, shape, box))  # box in the original frame's pixels, for the reference crops
    times = [round(i / fps, 2) for i in indices]
    base = {"frames": len(indices), "missing": yaws.count(None), "mirrored": mirrored,
            "yaw": [(t, None if y is None else round(y, 1)) for t, y in zip(times, yaws, strict=True)]}
    seen = [y for y in yaws if y is not None]
    if not seen:
        return LivenessReport(False, "no face in the clip", **base)
    if base["missing"] > MAX_MISSING * len(indices):
        return LivenessReport(False, f"the face is lost in {base['missing']} of {len(indices)} frames: keep your "
                                     "whole face in view, lit, and turn a little less", **base)
    runs = _segments(yaws)
    peaks = tuple(round(max((yaws[i] for i in r), key=abs), 1) for _, r in runs)  # type: ignore[arg-type]
    base |= {"turns_seen": tuple(s for s, _ in runs), "peaks_deg": peaks}
    if max(abs(y) for y in seen) < TURN_DEG:
        return LivenessReport(False, f"no head turn: yaw stays within {min(seen):.0f}..{max(seen):.0f} degrees and a "
                                     f"turn must pass {TURN_DEG:.0f} (a still or a photo cannot enrol)", **base)
    # identity before the order of turns (a spliced clip is refused as such): the frontal frames make the
    # reference; the turn peaks and an even spread of the rest are compared with it
    faced = [k for k, s in enumerate(shapes) if s is not None]
    frontal = sorted(faced, key=lambda k: abs(yaws[k] or 0.0))[:max(1, min(6, len(faced) // 4))]
    peak_frames = [max(r, key=lambda k: abs(yaws[k] or 0.0)) for _, r in runs]
    spread = [faced[j] for j in sample_indices(len(faced), MAX_EMBED - len(frontal) - len(peak_frames))]
    vectors = {k: _descriptor(models, shapes[k]) for k in sorted(set(frontal) | set(peak_frames) | set(spread))}
    mean = np.mean([vectors[k] for k in frontal], axis=0)
    distances = {k: float(np.linalg.norm(v - mean)) for k, v in vectors.items()}
    worst = max(distances, key=distances.__getitem__)
    base["identity_max_distance"] = round(distances[worst], 3)
    if distances[worst] >= IDENTITY_TOLERANCE:
        return LivenessReport(False, f"the face changes identity (at {times[worst]:.1f} s, distance "
                                     f"{distances[worst]:.2f} from the frontal face): one person only", **base)
    if base["turns_seen"] != challenge.turns:
        saw = ", ".join(base["turns_seen"]) or f"no turn beyond {TURN_DEG:.0f} degrees"
        return LivenessReport(False, f"the head turns do not follow the challenge: asked {', '.join(challenge.turns)}"
                                     f"; saw {saw}", **base)
    sides = {side: k for (side, _), k in reversed(list(zip(runs, peak_frames, strict=True)))}  # first of each
    references = []
    for k in [frontal[0], *sides.values()]:
        references.append(_crop(_rgb(frames[indices[k]]), shapes[k][2]))  # type: ignore[index]
    return LivenessReport(True, f"liveness passed: {len(runs)} turns as asked, peaks "
                                f"{', '.join(f'{p:+.0f}' for p in peaks)} degrees, one identity "
                                f"(max distance {distances[worst]:.2f})", embedding=mean, references=references,
                          **base)
