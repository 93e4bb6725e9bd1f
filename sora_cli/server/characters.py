"""Characters: a pet, a toy or a made-up figure taken from a short video, used in prompts as `@name`.

OpenAI's API stores a character from a video (`POST /v1/videos/characters`); here that video gives a few
reference pictures (first, middle and last frame), which a prompt that names the character as `@name` (or
`@char_…`) passes to a reference-frame model (VACE), the way a cameo's frames are passed. A person is not a
character: a video with a human face in it is refused, because a likeness needs its owner's cameo (liveness,
consent, revocation). The pictures are checked again, like any input photo, when a job uses them.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from sora_cli.errors import SoraError

PICTURES = 3
_TAG = re.compile(r"(?<![\w@])@([A-Za-z0-9_][\w.-]{0,63})")


class CharacterRefused(SoraError):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def pictures_of(video: Path) -> list[Path]:
    return [video.with_name(f"{video.stem}-{index}.png") for index in range(PICTURES)]


def prepare_character(video: Path) -> list[Path]:
    """Read the video, refuse one that shows a person, and keep its reference pictures beside it."""
    import numpy as np
    from PIL import Image

    from sora_cli.errors import InputError
    from sora_cli.media.encode import write_bytes
    from sora_cli.media.inputs import read_video
    from sora_cli.safety.faces import detect_faces

    try:
        clip = read_video(video, max_seconds=20)
    except (InputError, SoraError) as exc:
        video.unlink(missing_ok=True)
        raise CharacterRefused(f"the character video cannot be read: {exc}", "invalid_input") from None
    count = len(clip.frames)
    chosen = sorted({0, count // 2, count - 1})
    frames = [np.ascontiguousarray(clip.frames[i]) for i in chosen]
    if any(detect_faces(frame) for frame in frames):
        video.unlink(missing_ok=True)
        raise CharacterRefused("the video shows a person: a character is a pet, an object or a made-up figure; a "
                               "person's likeness needs their cameo (sora cameo enroll)", "character_is_a_person")
    paths = pictures_of(video)
    for frame, path in zip(frames + frames[-1:] * (PICTURES - len(frames)), paths, strict=True):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        write_bytes(buffer.getvalue(), path)
    return paths


def resolve(prompt: str, characters: list[dict]) -> tuple[str, tuple[Path, ...], tuple[str, ...]]:
    """(the prompt with each named character's @ dropped, their pictures, their ids) for a user's characters.

    `@name` matches a character's name without spaces, case-insensitively, or its id; other @tags are left
    for the cameo check.
    """
    by_tag: dict[str, dict] = {}
    for row in characters:
        by_tag.setdefault(row["id"].lower(), row)
        by_tag.setdefault(re.sub(r"\s+", "", row["name"]).lower(), row)
    used: dict[str, dict] = {}

    def swap(match: re.Match) -> str:
        row = by_tag.get(match[1].lower())
        if row is None:
            return match[0]
        used[row["id"]] = row
        return row["name"]

    text = _TAG.sub(swap, prompt)
    pictures = tuple(p for row in used.values() for p in pictures_of(Path(row["path"])) if p.is_file())
    return text, pictures, tuple(used)
