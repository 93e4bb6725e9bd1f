"""Engines turn a Plan into frames. One small interface; the local diffusers engine is one of them.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sora_cli.requests import Plan

# `from_pretrained` in diffusers and transformers builds modules on the meta device by patching torch.nn.Module
# for the whole process while it runs, so two models must never load at once from two threads (the other one
# would get weightless meta tensors), and their lazy modules fail when two threads import them at once. Every
# import of those libraries and every model load in sora-cli takes this lock.
MODEL_LOADING = threading.Lock()


@dataclass(frozen=True)
class ProgressEvent:
    phase: str  # load | denoise | decode | encode | done
    step: int | None = None
    total: int | None = None
    message: str | None = None


Reporter = Callable[[ProgressEvent], None]


def no_report(event: ProgressEvent) -> None:
    pass


@dataclass
class Clip:
    frames: Any  # uint8 numpy array [F, H, W, 3]
    fps: int
    audio: Any | None = None
    sample_rate: int | None = None
    info: dict[str, Any] = field(default_factory=dict)  # device, dtype, offload actually used


class Engine(ABC):
    """Loaded once, kept warm: `generate` may be called many times."""

    #: a stable description of the weights, recorded with every video
    model_hash: str | None = None
    notices: tuple[str, ...] = ()

    @abstractmethod
    def generate(self, plan: Plan, report: Reporter = no_report) -> Clip: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def quiet_libraries() -> None:
    """diffusers and transformers print their own bars and warnings; ours go to stderr instead."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for lib in (diffusers_logging, transformers_logging):
        lib.set_verbosity_error()
        lib.disable_progress_bar()
