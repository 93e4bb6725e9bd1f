"""Input photos and clips: real files made here with Pillow and imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sora_cli.errors import InputError, UsageError
from sora_cli.media.encode import encode_mp4
from sora_cli.media.inputs import FIT_MODES, fit_frames, fit_image, load_image, read_video
from sora_cli.media.probe import ffmpeg_exe, probe

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


def halves(size: tuple[int, int], left: tuple, right: tuple, mode: str = "RGB") -> Image.Image:
    img = Image.new(mode, size, right)
    img.paste(Image.new(mode, (size[0] // 2, size[1]), left), (0, 0))
    return img


def close(pixel, colour, tol: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour, strict=True))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Made once: a 10 s constant-rate clip with sound, a variable-rate clip, an audio-only file."""
    root = tmp_path_factory.mktemp("clips")
    ten = root / "ten.mp4"
    # testsrc draws a frame counter, so every frame differs; -g 25 puts keyframes inside the clip so the
    # tail read really seeks
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=10", "-f", "lavfi", "-i",
           "sine=frequency=440:sample_rate=16000:duration=10", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(ten))
    vfr = root / "vfr.mp4"  # 1 s at 10 fps then 1 s at 30 fps in one stream; -qp 0 keeps each frame distinct
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i",
           "testsrc=size=64x48:rate=30:duration=1", "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
           "-map", "[v]", "-fps_mode", "vfr", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(vfr))
    m4a = root / "voice.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-c:a", "aac", str(m4a))
    wav = root / "voice.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", str(wav))
    Image.new("RGB", (32, 32), RED).save(root / "cover.jpg")
    song = root / "song.mp3"  # audio with cover art: a picture stream that is not a video
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-i", str(root / "cover.jpg"), "-map", "0:a",
           "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic", str(song))
    return {"ten": ten, "vfr": vfr, "m4a": m4a, "wav": wav, "mp3": song}


# ---------------------------------------------------------------------------------------------- photos


def test_rgba_is_composited_onto_black(tmp_path: Path) -> None:
    img = Image.new("RGBA", (40, 30), (255, 255, 255, 255))
    img.paste(Image.new("RGBA", (20, 30), (255, 255, 255, 0)), (0, 0))  # left half fully transparent
    img.putpixel((30, 15), (200, 100, 50, 128))  # half transparent
    img.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.mode == "RGB" and out.size == (40, 30)
    assert out.getpixel((5, 5)) == BLACK
    assert out.getpixel((35, 5)) == WHITE
    assert close(out.getpixel((30, 15)), (100, 50, 25), tol=2)


def test_la_and_palette_transparency(tmp_path: Path) -> None:
    Image.new("LA", (8, 8), (255, 0)).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").getpixel((3, 3)) == BLACK
    pal = Image.new("P", (10, 10), 1)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.paste(0, (0, 0, 5, 10))
    pal.save(tmp_path / "p.png", transparency=0)  # index 0 (red) is transparent
    out = load_image(tmp_path / "p.png")
    assert out.getpixel((2, 2)) == BLACK and out.getpixel((7, 2)) == GREEN


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = halves((40, 20), RED, BLUE)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display", as phones write it
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert Image.open(tmp_path / "phone.jpg").size == (40, 20)
    out = load_image(tmp_path / "phone.jpg")
    assert out.size == (20, 40)
    assert close(out.getpixel((10, 5)), RED, 30) and close(out.getpixel((10, 35)), BLUE, 30)  # left became top


def test_animated_gif_and_webp_give_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 12), c) for c in (RED, BLUE, GREEN)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    for name in ("a.gif", "a.webp"):
        out = load_image(tmp_path / name)
        assert out.size == (16, 12) and close(out.getpixel((8, 6)), RED, 8), name


def test_odd_and_tiny_sizes_and_16_bit(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "dot.png")
    assert load_image(tmp_path / "dot.png").getpixel((0, 0)) == (10, 20, 30)
    Image.new("RGB", (333, 517), WHITE).save(tmp_path / "odd.jpg")
    assert load_image(tmp_path / "odd.jpg").size == (333, 517)
    Image.new("CMYK", (9, 7), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    assert close(load_image(tmp_path / "cmyk.jpg").getpixel((4, 3)), WHITE, 3)
    Image.fromarray(np.full((6, 5), 30000, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert close(load_image(tmp_path / "deep.png").getpixel((2, 2)), (117, 117, 117), 1)  # not clipped to white


def test_unreadable_images_are_one_line_input_errors(tmp_path: Path, clips: dict[str, Path]) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("a photo of a cat\n")
    (tmp_path / "folder.png").mkdir()
    halves((200, 150), RED, BLUE).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (64, 64), RED).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) - 30])
    cases = {
        "missing.png": "does not exist",
        "folder.png": "is a folder",
        "empty.png": "is empty",
        "notes.txt": "is not an image Pillow can read",
        "cut.jpg": "truncated or corrupt",
        "cut.png": "truncated or corrupt",
    }
    for name, words in cases.items():
        with pytest.raises(InputError) as info:
            load_image(tmp_path / name)
        message = str(info.value)
        assert words in message and str(tmp_path / name) in message and "\n" not in message, message
    with pytest.raises(InputError, match="looks like a video"):
        load_image(clips["ten"])


def test_absurd_sizes_are_refused_with_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")  # 10000 px: over 2x the limit (Pillow's error)
    Image.new("RGB", (40, 40)).save(tmp_path / "warn.png")  # 1600 px: between 1x and 2x (Pillow only warns)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for name in ("big.png", "warn.png"):
        with pytest.raises(InputError, match=r"too large \(0\.\d+ megapixels\); the limit is 0\.001 megapixels"):
            load_image(tmp_path / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    assert load_image(tmp_path / "warn.png").size == (40, 40)  # 1600 <= 2000: fine
    with pytest.raises(InputError, match=r"\(0\.01 megapixels\); the limit is 0\.002 megapixels"):
        load_image(tmp_path / "big.png")


# ---------------------------------------------------------------------------------------------- fitting


def test_fit_modes_give_the_exact_size() -> None:
    src = Image.new("RGB", (333, 517), WHITE)
    for mode in FIT_MODES:
        for size in ((512, 320), (320, 512), (1, 1), (333, 517), (1000, 17)):
            assert fit_image(src, *size, mode=mode).size == size, (mode, size)
    with pytest.raises(UsageError, match="crop, pad, stretch"):
        fit_image(src, 64, 64, mode="zoom")
    with pytest.raises(UsageError):
        fit_image(src, 0, 64)


def test_crop_keeps_the_centre() -> None:
    src = Image.new("RGB", (200, 100), RED)
    src.paste(Image.new("RGB", (100, 100), GREEN), (50, 0))
    src.paste(Image.new("RGB", (50, 100), BLUE), (150, 0))
    for img in (src, src.rotate(90, expand=True)):  # wide and tall
        out = np.asarray(fit_image(img, 64, 64, "crop")).astype(int)
        assert np.abs(out[2:-2, 2:-2] - GREEN).max() <= 2
        assert np.abs(out - GREEN).max() <= 16  # the filter's reach across the cut edge, no more


def test_pad_letterboxes_on_black() -> None:
    out = np.asarray(fit_image(Image.new("RGB", (200, 100), WHITE), 100, 100, "pad"))
    assert (out[:25] == 0).all() and (out[75:] == 0).all()  # bars above and below
    assert (out[26:74] >= 250).all()  # the picture, full width
    side = np.asarray(fit_image(Image.new("RGB", (100, 200), WHITE), 100, 100, "pad"))
    assert (side[:, :25] == 0).all() and (side[:, 75:] == 0).all() and (side[:, 26:74] >= 250).all()


def test_stretch_and_fit_frames() -> None:
    out = np.asarray(fit_image(halves((200, 100), RED, BLUE), 50, 80, "stretch"))
    assert close(out[40, 5], RED) and close(out[40, 45], BLUE)
    frames = np.zeros((3, 48, 64, 3), dtype=np.uint8)
    frames[1] = 255
    fitted = fit_frames(frames, 32, 40, "pad")
    assert fitted.shape == (3, 40, 32, 3) and fitted.dtype == np.uint8
    assert (fitted[1, 20, :] >= 250).all() and (fitted[1, 0] == 0).all() and (fitted[0] == 0).all()


# ---------------------------------------------------------------------------------------------- clips


def test_read_whole_clip_at_its_own_rate(clips: dict[str, Path]) -> None:
    clip = read_video(clips["ten"])
    assert clip.frames.shape == (250, 64, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == 25 and (clip.width, clip.height) == (96, 64)
    assert clip.duration == pytest.approx(10.0, abs=0.05) and clip.start == 0 and clip.used_seconds == 10
    assert clip.has_audio
    assert clip.describe() == "using 10.00 s (250 frames at 25 fps) from 0:00 of a 10.0 s clip"


def test_first_and_last_part_of_a_long_clip(clips: dict[str, Path]) -> None:
    full = read_video(clips["ten"], fps=16)
    assert len(full.frames) == 160
    head = read_video(clips["ten"], fps=16, max_seconds=33 / 16)
    assert head.frames.shape[0] == 33 and head.start == 0 and head.used_seconds == pytest.approx(2.0625)
    assert np.array_equal(head.frames, full.frames[:33])
    assert head.describe() == "using 2.06 s (33 frames at 16 fps) from 0:00 of a 10.0 s clip"
    tail = read_video(clips["ten"], fps=16, max_seconds=33 / 16, tail=True)
    assert tail.frames.shape[0] == 33 and tail.start == pytest.approx(10 - 33 / 16, abs=1 / 16)
    assert np.abs(tail.frames.astype(int) - full.frames[-33:]).mean() < 1  # the same frames, found by seeking
    assert not np.array_equal(tail.frames[0], head.frames[0])
    assert "from 0:07.94 of a 10.0 s clip" in tail.describe()
    longer = read_video(clips["ten"], max_seconds=60, tail=True)  # asks for more than there is
    assert len(longer.frames) == 250 and longer.start == 0


def test_variable_frame_rate_is_resampled_by_time(clips: dict[str, Path]) -> None:
    clip = read_video(clips["vfr"], fps=30)
    assert clip.frames.shape == (60, 48, 64, 3)

    def changes(frames: np.ndarray) -> int:
        return sum(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True))

    # first second: 10 source frames, each held for 3 output frames; second second: 30 distinct frames
    assert changes(clip.frames[:30]) == 9
    assert changes(clip.frames[30:]) == 29
    own = read_video(clips["vfr"])  # no fps: the file's average rate, 40 frames / 2 s
    assert own.fps == 20 and len(own.frames) == 40


def test_rotated_phone_clip_comes_out_upright(tmp_path: Path, clips: dict[str, Path]) -> None:
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-display_rotation:v:0", "90", "-i", str(clips["ten"]), "-c", "copy", "-t", "1", str(rotated))
    plain = read_video(clips["ten"], max_seconds=0.2).frames
    turned = read_video(rotated, max_seconds=0.2).frames
    assert turned.shape == (5, 96, 64, 3)
    diffs = [np.abs(turned.astype(int) - np.rot90(plain, k, axes=(1, 2))).mean() for k in (1, -1)]
    assert min(diffs) < 2


def test_bad_clips_are_one_line_input_errors(tmp_path: Path, clips: dict[str, Path]) -> None:
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(tmp_path / "whole.mp4"))
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])  # index first, frames cut short
    (tmp_path / "cut_fs.mp4").write_bytes(clips["ten"].read_bytes()[:20000])  # index last: never written
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a video\n" * 50)
    (tmp_path / "notes.dat").write_text("not a video\n" * 50)
    (tmp_path / "dir.mp4").mkdir()
    Image.new("RGB", (32, 32), RED).save(tmp_path / "photo.jpg")
    cases = {
        "missing.mp4": "does not exist",
        "dir.mp4": "is a folder",
        "empty.mp4": "is empty",
        "cut.mp4": "truncated or corrupt",
        "cut_fs.mp4": "truncated or corrupt",
        "notes.txt": "is a text file, not a video",
        "notes.dat": "is not a video ffmpeg can read",
        "photo.jpg": "is a still image",
    }
    for name, words in cases.items():
        with pytest.raises(InputError) as info:
            read_video(tmp_path / name)
        message = str(info.value)
        assert words in message and str(tmp_path / name) in message and "\n" not in message, message
    for name in ("m4a", "wav", "mp3"):
        with pytest.raises(InputError, match=r"has no video stream \(audio only\)"):
            read_video(clips[name])
    with pytest.raises(UsageError):
        read_video(clips["ten"], fps=0)
    with pytest.raises(UsageError):
        read_video(clips["ten"], max_seconds=-1)


# ---------------------------------------------------------------------------------------------- audio out


@pytest.mark.parametrize(("layout", "rate", "fps", "count", "stretch"), [
    ("mono", 16000, 16, 33, 0.7),  # short waveform: padded with silence
    ("channels-first", 44100, 24, 49, 1.5),  # long waveform: trimmed
    ("channels-last", 48000, 30000 / 1001, 31, 1.0),
])
def test_encode_mp4_with_audio_matches_the_video_length(tmp_path: Path, layout: str, rate: int, fps: float,
                                                        count: int, stretch: float) -> None:
    frames = np.random.default_rng(1).integers(0, 255, (count, 48, 64, 3), dtype=np.uint8)
    samples = int(count / fps * rate * stretch)
    tone = 0.4 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)
    audio = {"mono": tone, "channels-first": np.stack([tone, -tone]), "channels-last": np.stack([tone, tone], 1)}
    out = tmp_path / "clip.mp4"
    encode_mp4(frames, fps, out, audio=audio[layout].astype(np.float32), sample_rate=rate)
    info = probe(out)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.frames == count
    assert info.has_audio and info.audio_codec == "aac" and info.audio_sample_rate == rate
    assert info.audio_duration == pytest.approx(count / fps, abs=1 / fps)
    assert info.audio_duration == pytest.approx(count / fps, abs=0.002)  # measured: within one sample
    head = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert (" mono," in head) == (layout == "mono") and (" stereo," in head) == (layout != "mono")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # the scratch WAV is gone


def test_encode_mp4_without_audio_is_unchanged(tmp_path: Path) -> None:
    frames = np.zeros((9, 32, 48, 3), dtype=np.uint8)
    encode_mp4(frames, 8, tmp_path / "quiet.mp4")
    info = probe(tmp_path / "quiet.mp4")
    assert info.frames == 9 and not info.has_audio and info.audio_duration is None and info.audio_sample_rate is None
    assert (info.width, info.height, info.fps) == (48, 32, 8)
