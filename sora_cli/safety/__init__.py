"""Safety, offline: prompt moderation, the rights registry, nudity and face checks on frames, the safety log.

Importing this package loads no model and no heavy library: MiniLM, dlib and nudenet load inside the calls that
need them. See moderate.py for how a job calls in before a model loads and after frames are made.
"""

from __future__ import annotations

from typing import Any

from sora_cli.safety.log import SafetyLog
from sora_cli.safety.moderate import Context, Decision, Moderator
from sora_cli.safety.policy import LOCKED, Policy, load_policy
from sora_cli.safety.rights import Grant, RightsRegistry, load_rights

__all__ = [
    "LOCKED", "Context", "Decision", "Face", "FaceMatch", "FrameReport", "Grant", "Moderator", "Policy",
    "RightsRegistry", "SafetyLog", "check_frames", "check_input_faces", "detect_faces", "embed_faces",
    "load_policy", "load_rights", "match_face",
]

_LAZY = {
    "Face": "faces", "FaceMatch": "faces", "detect_faces": "faces", "embed_faces": "faces", "match_face": "faces",
    "FrameReport": "frames", "check_frames": "frames", "check_input_faces": "frames",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"sora_cli.safety.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sora_cli.safety' has no attribute {name!r}")
