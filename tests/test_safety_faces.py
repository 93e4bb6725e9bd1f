"""Faces and frames, on photos from skimage.data: altered copies of one face, and other people's faces.

The astronaut (Eileen Collins) is the enrolled cameo; LFW faces from `skimage.data.lfw_subset()` (25x25,
upscaled) are other people. dlib and nudenet load once per process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

from sora_cli.errors import PolicyRefusal  # noqa: E402
from sora_cli.safety import Context, SafetyLog  # noqa: E402
from sora_cli.safety.faces import detect_faces, match_face  # noqa: E402
from sora_cli.safety.frames import check_frames, check_input_faces, nudity_detector, sample_indices  # noqa: E402


def upscale(gray: np.ndarray, size: int = 150) -> np.ndarray:
    from skimage.transform import resize

    return np.ascontiguousarray(np.stack([(resize(gray, (size, size)) * 255).astype(np.uint8)] * 3, axis=-1))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def eileen(astronaut: np.ndarray) -> np.ndarray:
    faces = detect_faces(astronaut)
    assert faces and faces[0].embedding.shape == (128,)
    left, top, right, bottom = faces[0].box
    assert left < 220 < right and top < 120 < bottom  # her face, not the patch on the suit
    assert len(faces[0].landmarks) == 5
    return faces[0].embedding


@pytest.fixture(scope="module")
def strangers() -> list[np.ndarray]:
    """Three LFW faces (other people), upscaled so HOG can find them."""
    found = []
    for gray in skdata.lfw_subset()[:10]:
        faces = detect_faces(upscale(gray))
        if faces:
            found.append(faces[0].embedding)
        if len(found) == 3:
            return found
    raise AssertionError("no LFW face found")


def altered(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    from skimage.transform import rescale, rotate

    return {
        "flipped": astronaut[:, ::-1],
        "brighter": np.clip(astronaut.astype(np.int16) * 13 // 10 + 20, 0, 255).astype(np.uint8),
        "rotated 8 degrees": (rotate(astronaut, 8, mode="edge") * 255).astype(np.uint8),
        "cropped": astronaut[20:320, 90:390],
        "half size": (rescale(astronaut, 0.5, channel_axis=-1) * 255).astype(np.uint8),
    }


def test_altered_copies_of_one_face_match(astronaut: np.ndarray, eileen: np.ndarray) -> None:
    gallery = [("@someone", np.ones(128, dtype=np.float32) * 0.1), ("@eileen", eileen)]
    for name, image in altered(astronaut).items():
        faces = detect_faces(np.ascontiguousarray(image))
        assert faces, name
        match = match_face(faces[0].embedding, gallery)
        assert match.handle == "@eileen" and match.distance < 0.35, (name, match)


def test_other_people_do_not_match(eileen: np.ndarray, strangers: list[np.ndarray]) -> None:
    for vector in strangers:
        match = match_face(vector, [("@eileen", eileen)])
        assert match.handle is None and match.nearest == "@eileen" and match.distance > 0.6
    assert match_face(eileen, []).handle is None


def test_no_face_in_a_cat_or_noise() -> None:
    assert detect_faces(skdata.chelsea()) == []
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    assert detect_faces(noise) == []


def test_sample_indices_spread_over_the_clip() -> None:
    assert sample_indices(17, 4) == [0, 5, 11, 16]
    assert sample_indices(3, 8) == [0, 1, 2] and sample_indices(0, 8) == [] and sample_indices(9, 1) == [0]


def video(frames: list[np.ndarray], size: int = 256) -> np.ndarray:
    from skimage.transform import resize

    return np.stack([(resize(f, (size, size)) * 255).astype(np.uint8) for f in frames])


def test_a_video_showing_an_enrolled_face_not_permitted_is_blocked(astronaut: np.ndarray, eileen: np.ndarray,
                                                                   strangers: list[np.ndarray], tmp_path: Path) -> None:
    clip = video([skdata.coffee(), astronaut, astronaut[:, ::-1], skdata.chelsea()])
    gallery = [("@eileen", eileen), ("@other", strangers[0])]
    report = check_frames(clip, gallery=gallery, permitted={"@other"}, sample=4, nudity=False)
    assert report.blocked and report.faces >= 2 and {h.handle for h in report.cameos} == {"@eileen"}
    assert "@eileen" in report.message
    with pytest.raises(PolicyRefusal, match="@eileen"):
        report.enforce()
    log = SafetyLog(tmp_path / "safety.db")
    log.record_pictures(report, Context(source="server", user="@bob"))
    event = log.events()[0]
    assert (event["kind"], event["verdict"], event["category"], event["user"]) == ("frames", "block", "cameo_consent",
                                                                                   "@bob")
    assert "embedding" not in json.dumps(event)  # reasons and distances, never descriptors
    assert not check_frames(clip, gallery=gallery, permitted={"@eileen"}, sample=4, nudity=False).blocked
    assert not check_frames(clip, gallery=[("@other", strangers[0])], sample=4, nudity=False).blocked


def test_nudenet_runs_on_a_benign_frame(astronaut: np.ndarray) -> None:
    detector = nudity_detector()
    # its session runs on one thread that does not spin (it works beside the pipeline and the encoder)
    assert detector.onnx_session.get_session_options().intra_op_num_threads == 1
    detections = detector.detect(astronaut[..., ::-1].copy())
    assert any(d["class"] == "FACE_FEMALE" for d in detections)  # the model ran and saw her face
    report = check_frames(np.stack([astronaut] * 3).astype(np.float32) / 255, sample=3, faces=False)
    assert report.nudity == () and not report.blocked and report.frames == (0, 1, 2)


def test_our_decoding_of_nudenets_output_is_nudenets(astronaut: np.ndarray) -> None:
    """`_Detector` decodes the model's boxes in numpy: the same detections as nudenet's per-box loop, on the model's
    real output and on made-up outputs dense with boxes above its 0.2 floor."""
    import nudenet
    from nudenet.nudenet import _postprocess

    ours = nudity_detector()
    theirs = nudenet.NudeDetector.__new__(nudenet.NudeDetector)
    theirs.onnx_session, theirs.input_name, theirs.input_width, theirs.input_height = \
        ours.onnx_session, ours.input_name, 320, 320
    for picture in (astronaut, astronaut[:300, :200], astronaut[::3, ::2]):
        bgr = np.ascontiguousarray(picture[..., ::-1])
        assert ours.detect(bgr) == theirs.detect(bgr)
    rng = np.random.default_rng(7)
    found = 0
    for width, height, x_pad, y_pad in ((256, 256, 0, 0), (480, 270, 0, 210), (200, 300, 100, 0)):
        output = [rng.uniform(0, 1, (1, 22, 2100)).astype(np.float32)]
        output[0][0, :4] *= 320
        output[0][0, 4:] **= 6  # most candidates under the floor, some far over it
        expected = _postprocess(output, x_pad, y_pad, 1, 1, width, height, 320, 320)
        assert ours.decode(output, x_pad, y_pad, width, height) == expected
        found += len(expected)
    assert found > 20


def test_nudity_blocks_a_video() -> None:
    class Detector:  # nudenet's interface, reporting what it would on an explicit frame
        def detect(self, image: np.ndarray) -> list[dict]:
            return [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.91, "box": [0, 0, 9, 9]},
                    {"class": "FEET_EXPOSED", "score": 0.99, "box": [0, 0, 9, 9]}]

    report = check_frames(np.zeros((5, 64, 64, 3), np.uint8), sample=2, faces=False, detector=Detector())
    assert report.blocked and report.nudity[0].label == "FEMALE_BREAST_EXPOSED"
    assert "nudity" in report.message and "FEET" not in report.message


def test_input_faces_need_a_permitted_cameo_or_attested_consent(astronaut: np.ndarray, eileen: np.ndarray) -> None:
    photo = np.ascontiguousarray(astronaut[0:300, 100:400])  # her head only
    refused = check_input_faces(photo)
    assert not refused.allowed and "--attest-consent" in refused.message
    with pytest.raises(PolicyRefusal):
        refused.enforce()
    attested = check_input_faces(photo, attest_consent=True)
    assert attested.allowed and attested.to_dict() == {"faces": 1, "cameos": [], "attested_consent": True}
    mine = check_input_faces(photo, gallery=[("@eileen", eileen)], permitted={"@eileen"})
    assert mine.allowed and mine.cameos == ("@eileen",) and not mine.attested_consent
    theirs = check_input_faces(photo, gallery=[("@eileen", eileen)], attest_consent=True)
    assert not theirs.allowed and "@eileen" in theirs.message  # consent cannot be attested for an enrolled cameo
    assert check_input_faces(skdata.chelsea()).allowed


def test_longer_videos_get_more_frames_checked():
    from sora_cli.safety.frames import frames_to_check
    from sora_cli.safety.policy import load_policy

    assert frames_to_check(17, 16) == 4  # about 1 s: every quarter second
    assert frames_to_check(81, 16) == 11  # 5 s: two a second
    assert frames_to_check(241, 24) == 16  # 10 s: at most 16
    assert frames_to_check(9, None) == 16  # no rate known: the most
    shipped = load_policy()
    assert frames_to_check(17, 16, shipped) == 4 and frames_to_check(241, 24, shipped) == 16
