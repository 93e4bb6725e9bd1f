"""The safety steps of the one path, in order: prompt rules and input faces before anything loads, the
moderation model's verdict before sampling starts, and the made frames before anything is written.

The moderation model (MiniLM) and the nudity detector load in background threads while the video pipeline loads, so
a prompt is judged in full before a single step is sampled without adding their load time to a job. (Loading nudenet
while the frames are sampled instead was tried: signing then took 0.3 s instead of 0.05 s, bench/overhead.)
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.requests import GenerateRequest


class Guard:
    def __init__(self, paths: Paths, source: str = "cli", user: str | None = None, server: str | None = None):
        from sora_cli.safety import Context

        self.paths = paths
        self.user = user  # the requester on a server; None is this machine's owner
        self.context = Context(source=source, user=user, server=server)
        self._moderator = None
        self._book = None
        self._preload: list[str] = []  # the background loads started

    @property
    def moderator(self):
        if self._moderator is None:
            from sora_cli.safety import Moderator

            self._moderator = Moderator.from_paths(self.paths)
        return self._moderator

    def use_book(self, book: Any) -> None:
        """Check cameos against this book (a server's, with its follows and minors) instead of the local one."""
        self._book = book

    @property
    def book(self):
        if self._book is None:
            from sora_cli.cameo import CameoBook

            self._book = CameoBook(self.paths)
        return self._book

    def gallery(self) -> list[tuple[str, Any]]:
        """Enrolled cameos as ("@handle", face descriptor): their faces may appear only where permitted."""
        return self.book.gallery()

    def permitted(self) -> set[str]:
        return self.book.permitted(self.user)

    def cameos(self, request: GenerateRequest) -> tuple[str, ...]:
        """The cameos a request uses (@handles in the prompt and --cameo), checked: permission, rules, at most two."""
        if "@" not in (request.prompt or "") and not request.cameos:  # no mention: the cameo book stays unopened
            return ()
        from sora_cli.cameo.access import normalize_handle
        from sora_cli.errors import PolicyRefusal

        handles = tuple(dict.fromkeys(normalize_handle(h) for h in
                                      [*self.book.handles_in(request.prompt), *request.cameos]))
        if handles:
            ok, reason = self.book.check_use(list(handles), self.user, request.prompt)
            if not ok:
                if self.moderator.log is not None:
                    self.moderator.log.add(kind="cameo", verdict="refuse", source=self.context.source,
                                           category="cameo_consent", layer="cameo", user=self.user,
                                           details={"cameos": list(handles), "reason": reason})
                raise PolicyRefusal(f"refused: {reason}")
        return handles

    def prompts(self, request: GenerateRequest) -> list[str]:
        return [text for text in (request.prompt, request.soundtrack) if text and text.strip()]

    def check_prompts(self, request: GenerateRequest) -> None:
        """The instant layers (hard rules, the rights registry) on every prompt of the request."""
        for text in self.prompts(request):
            self.moderator.guard(text, self.context, model=False)

    def check_inputs(self, request: GenerateRequest, inputs: Any) -> dict[str, Any] | None:
        """Faces in a photo or clip to animate, remix or extend: a permitted cameo, or --attest-consent."""
        return self._input_faces(request, inputs) if _pictures(inputs) is not None else None

    def check_references(self, request: GenerateRequest) -> tuple:
        """The character pictures (PIL images) of a request, each checked like an input photo: a face in one
        needs a cameo the requester may use (characters are for pets, objects and made-up figures)."""
        import numpy as np

        from sora_cli.errors import PolicyRefusal
        from sora_cli.media.inputs import load_image
        from sora_cli.safety import check_input_faces

        pictures = tuple(load_image(Path(path)) for path in request.references)
        for picture in pictures:
            report = check_input_faces(np.asarray(picture), gallery=self.gallery(), permitted=self.permitted())
            if not report.allowed:
                raise PolicyRefusal(f"refused: a character picture shows a person ({report.message}); "
                                    "a person's likeness needs their cameo")
        return pictures

    def start_loading(self) -> None:
        """MiniLM and the nudity detector, each in a background thread beside the pipeline's load (neither builds
        torch modules, so neither takes the model-loading lock)."""
        self._load_in_background("sora-safety-moderation", self._load_moderation)
        self._load_in_background("sora-safety-nudity", _load_nudity_detector)

    def _load_in_background(self, name: str, target: Any) -> None:
        if name not in self._preload:
            self._preload.append(name)
            threading.Thread(target=target, name=name, daemon=True).start()

    def _load_moderation(self) -> None:
        with contextlib.suppress(Exception):  # a failure is raised by the check that needs it
            self.moderator.warm_up()

    def before_sampling(self, request: GenerateRequest) -> dict[str, Any]:
        """The moderation model's verdict on every prompt (it has been loading beside the pipeline)."""
        decisions = [self.moderator.guard(text, self.context) for text in self.prompts(request)]
        return {"verdict": "allow", "policy": self.moderator.policy.digest,
                "model_checked": all(d.model_checked for d in decisions)}

    def after_sampling(self, frames: Any, fps: float | None = None) -> dict[str, Any]:
        """Nudity on sampled frames (more for longer videos); faces too when there are cameos to match them
        against."""
        from sora_cli.safety import check_frames

        gallery = self.gallery()
        report = check_frames(frames, gallery=gallery, permitted=self.permitted(), policy=self.moderator.policy,
                              faces=bool(gallery), fps=fps)
        if report.blocked and self.moderator.log is not None:
            self.moderator.log.record_pictures(report, self.context, policy=self.moderator.policy.digest)
        report.enforce()
        return report.to_dict()

    def _input_faces(self, request: GenerateRequest, inputs: Any) -> dict[str, Any]:
        from sora_cli.safety import check_input_faces

        report = check_input_faces(_pictures(inputs), gallery=self.gallery(), permitted=self.permitted(),
                                   attest_consent=request.attest_consent)
        if not report.allowed and self.moderator.log is not None:
            self.moderator.log.record_pictures(report, self.context, kind="input",
                                               policy=self.moderator.policy.digest)
        report.enforce()
        return report.to_dict()


def _pictures(inputs: Any) -> Any:
    """The photo(s) or the clip's frames a task starts from, as uint8 arrays; None for text-to-video."""
    import numpy as np

    if inputs is None:
        return None
    if inputs.images:
        return np.stack([np.asarray(img.resize(inputs.images["image"].size)) for img in inputs.images.values()])
    if inputs.clip is not None:
        return inputs.clip.frames
    return None


def _load_nudity_detector() -> None:
    """onnxruntime builds no torch modules, so no lock; a failure is raised by the frame check itself."""
    from sora_cli.safety.frames import nudity_detector

    with contextlib.suppress(Exception):
        nudity_detector()
