"""Watermarks for generated clips: an invisible, re-encode-proof content id and a visible moving mark.

Order matters: `embed` (invisible) first, then `apply_visible`; see visible.py for why.

    from sora_cli import marks
    content_id = marks.new_content_id()
    frames = marks.apply_visible(marks.embed(frames, content_id), handle, fps)
    marks.detect(frames)  # Detection(present=True, content_id=..., ...)

Pure numpy (+ PIL for the visible patch); `ALGORITHM` names the invisible mark in the C2PA soft-binding
assertion.
"""

from __future__ import annotations

from sora_cli.marks.invisible import ALGORITHM, DEFAULT_STRENGTH, Detection, detect, embed, new_content_id
from sora_cli.marks.visible import apply_visible

__all__ = ["ALGORITHM", "DEFAULT_STRENGTH", "Detection", "apply_visible", "detect", "embed", "new_content_id"]
