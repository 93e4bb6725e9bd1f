"""The one path every video takes: check → plan → generate → mark → encode → sign → record.

Moderation and consent join this path in their own issues, here and nowhere else.
Knows nothing of Typer, Rich or HTTP: progress goes to a Reporter callback.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_cli.config import Config
from sora_cli.engines import Clip, Engine, ProgressEvent, Reporter, no_report
from sora_cli.errors import Cancelled, OutputError, SoraError, UsageError
from sora_cli.guard import Guard
from sora_cli.library import Library, watermark_key
from sora_cli.media.atomic import check_output_dir
from sora_cli.models import ModelInfo, check_task, default_model, resolve_model
from sora_cli.plugins import Registry, load_registry
from sora_cli.requests import GenerateRequest, Plan, Video, new_video_id
from sora_cli.sources import Inputs, conditioning, gather, join

if TYPE_CHECKING:
    from concurrent.futures import Future

EngineFactory = Callable[[ModelInfo, str | None, str, Reporter], Engine]


def local_engine(info: ModelInfo, device: str | None, offload: str, report: Reporter) -> Engine:
    from sora_cli.engines.local import DiffusersEngine

    return DiffusersEngine(info, device=device, offload=offload, report=report)


def output_path(request: GenerateRequest, config: Config, seed: int) -> Path:
    """Where a video goes: `--output` (a .mp4 file, not a folder), else `<prompt-slug>-<seed>.mp4` in the
    output_dir setting (default: here); the folder must be writable."""
    if request.output is not None:
        output = Path(request.output).expanduser()
        if output.is_dir():
            raise OutputError(f"{output} is a folder; give a file name such as {output / 'clip.mp4'}")
        if output.suffix.lower() != ".mp4":
            raise UsageError(f"output {output} must end in .mp4")
    else:
        folder = Path(config.get("output_dir") or ".").expanduser()
        output = folder / f"{slugify(request.prompt or request.command)}-{seed}.mp4"
    check_output_dir(output.parent)
    return output


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "video"


@dataclass(frozen=True)
class Job:
    """A request resolved against its model and given a place on disk; nothing loaded yet."""

    plan: Plan
    model: ModelInfo
    output: Path
    inputs: Inputs | None = None  # the photo or clip it starts from
    soundtrack: ModelInfo | None = None  # the text-to-audio model for --soundtrack
    input_faces: dict | None = None  # what the face check found in the inputs (recorded, never the faces)


class Studio:
    """Holds the config, the plugin registry, the library and one warm engine."""

    def __init__(self, config: Config | None = None, registry: Registry | None = None,
                 engine_factory: EngineFactory = local_engine, source: str = "cli", user: str | None = None):
        self.config = config or Config.load()
        self.registry = registry or load_registry()
        self.engine_factory = engine_factory
        self.guard = Guard(self.config.paths, source=source, user=user)
        self._library: Library | None = None
        self._engine: Engine | None = None
        self._engine_key: tuple | None = None
        self._sound = None  # a warm SoundtrackEngine, once --soundtrack asks for one
        self._identity = None

    @property
    def library(self) -> Library:
        if self._library is None:
            self._library = Library(self.config.paths.library_db)
        return self._library

    def prepare(self, request: GenerateRequest) -> Job:
        """Everything that can fail before a model loads fails here, inputs read and checked included."""
        request.check()
        self.guard.check_prompts(request)  # hard rules and rights: instant, before anything else
        cameos = self.guard.cameos(request)  # consented likenesses: permission, owners' rules, at most two
        task = request.task
        references = cameos or request.references  # reference frames: VACE models take them
        wanted = "reference" if references else task
        model = resolve_model(request.model or default_model(wanted, self.config), self.config, self.registry)
        check_task(model, task, self.config, self.registry)
        if references:
            check_task(model, "reference", self.config, self.registry)
        inputs = gather(request, model, self.library)
        if inputs.request.prompt != request.prompt:  # extend took the clip's own prompt
            self.guard.check_prompts(inputs.request)
        request = inputs.request
        input_faces = self.guard.check_inputs(request, inputs)
        character_pictures = self.guard.check_references(request)  # faces in them: the rule for inputs
        self.guard.start_loading()  # the moderation model loads beside the pipeline
        plan = model.family.plan(request, model_ref=model.ref, model_id=model.location,
                                 class_name=model.class_name, defaults=model.defaults)
        if task != "t2v":
            plan = replace(plan, conditioning=conditioning(inputs, plan), notices=(*inputs.notices, *plan.notices))
        if references:
            plan = self._with_references(plan, cameos, character_pictures)
        soundtrack = None
        if request.soundtrack is not None:
            ref = request.soundtrack_model or default_model("soundtrack", self.config)
            soundtrack = resolve_model(ref, self.config, self.registry)
            check_task(soundtrack, "soundtrack", self.config, self.registry)
            if "audio" in model.tasks and request.audio:
                plan = replace(plan, notices=(*plan.notices, f"--soundtrack replaces the sound {model.ref} makes"))
        return Job(plan=plan, model=model, output=self._output_path(request, plan), inputs=inputs,
                   soundtrack=soundtrack, input_faces=input_faces)

    def _with_references(self, plan: Plan, cameos: tuple[str, ...], pictures: tuple) -> Plan:
        """Condition on the cameos' reference frames and the character pictures; the text encoder gets the
        cameos' names, not their @handles."""
        from sora_cli.media.inputs import fit_image
        from sora_cli.requests import Conditioning

        book = self.guard.book
        images = [img for handle in cameos for img in book.reference_frames(handle)] + list(pictures)
        frames = tuple(fit_image(img, plan.width, plan.height, mode="pad") for img in images)
        cond = replace(plan.conditioning or Conditioning(), reference_images=frames)
        prompt = book.prompt_for_model(plan.request.prompt) if cameos else plan.model_prompt
        return replace(plan, conditioning=cond, cameos=cameos, model_prompt=prompt)

    def _output_path(self, request: GenerateRequest, plan: Plan) -> Path:
        return output_path(request, self.config, plan.seed)

    def engine(self, model: ModelInfo, device: str | None, offload: str, report: Reporter) -> Engine:
        """One warm engine; a different model (or device, or offload) replaces it."""
        key = (model.location, device, offload)
        if self._engine_key != key:
            if self._engine is not None:
                self.close()
                gc.collect()  # free the old weights before the next model loads
            self._engine = self.engine_factory(model, device, offload, report)
            self._engine_key = key
        assert self._engine is not None
        return self._engine

    def generate(self, request: GenerateRequest, report: Reporter = no_report) -> Video:
        return self.run(self.prepare(request), report)

    def run(self, job: Job, report: Reporter = no_report) -> Video:
        """Make the video of a prepared job; the library row follows it to completed/failed/cancelled."""
        started = time.perf_counter()
        plan = job.plan
        request = plan.request
        parent = job.inputs.parent if job.inputs else None
        video = Video(
            id=new_video_id(), prompt=request.prompt, model=plan.model_ref, status="in_progress",
            seconds=f"{plan.seconds:g}", size=plan.size, seed=plan.seed, negative_prompt=request.negative_prompt,
            num_frames=plan.num_frames, fps=plan.fps, parameters=plan.parameters(),
            remixed_from_video_id=parent.id if parent else None,
        )
        self.library.save(video)
        for handle in plan.cameos:  # every use is in the owner's audit log, drafts and failures included
            self.guard.book.record_use(handle, video.id, self.guard.user, sha256_text(request.prompt))
        lap = Laps()
        try:
            engine = self.engine(job.model, request.device, request.offload, report)
            lap("load")
            safety = {"prompt": self.guard.before_sampling(request), "input_faces": job.input_faces}
            lap("moderate")
            clip = engine.generate(plan, report)
            if plan.task == "extend":
                assert job.inputs is not None
                clip = join(job.inputs, clip)
            lap("generate")
            # the frames are checked while they are marked and encoded; signing, which writes the file under its
            # name, waits for the verdict
            checking = _in_background(self.guard.after_sampling, clip.frames, clip.fps)

            def frames_checked() -> None:
                safety["frames"] = checking.result()

            if plan.cameos:  # reported, not enforced: a model may not manage a likeness
                safety["cameo_match"] = self.guard.book.match_output(clip.frames, list(plan.cameos))
                lap("cameo_match")
            if job.soundtrack is not None:
                clip.audio, clip.sample_rate = self._soundtrack(job, clip, report)
                lap("soundtrack")
            report(ProgressEvent("encode"))
            provenance, write_timings = self._write(video, clip, job, engine.model_hash, safety, frames_checked)
        except (KeyboardInterrupt, Cancelled) as exc:  # Ctrl-C, or a reporter that was told to stop
            self._finish(video, "cancelled", {"code": "cancelled", "message": str(exc) or "interrupted"})
            raise
        except SoraError as exc:
            self._finish(video, "failed", {"code": type(exc).__name__, "message": str(exc)})
            raise
        except Exception as exc:
            self._finish(video, "failed", {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
            raise
        video.model_hash = engine.model_hash
        video.parameters = {**video.parameters, **clip.info, **provenance, "safety": safety,
                            "notices": list(plan.notices + engine.notices)}
        video.num_frames, (height, width) = len(clip.frames), clip.frames.shape[1:3]
        video.seconds, video.size = f"{video.num_frames / clip.fps:g}", f"{width}x{height}"
        video.timings = {**lap.times, **write_timings, "total": round(time.perf_counter() - started, 3),
                         **peak_memory(clip)}
        self._finish(video, "completed")
        report(ProgressEvent("done"))
        return video

    def _soundtrack(self, job: Job, clip: Clip, report: Reporter) -> tuple:
        from sora_cli.engines.audio import SoundtrackEngine

        assert job.soundtrack is not None and job.plan.request.soundtrack is not None
        if self._sound is None or self._sound.info.location != job.soundtrack.location:
            self._sound = SoundtrackEngine(job.soundtrack, job.plan.request.device, report)
        return self._sound.generate(job.plan.request.soundtrack, len(clip.frames) / clip.fps, job.plan.seed, report)

    @property
    def identity(self):
        """The signing identity: a local CA and ES256 leaf on first use (keys in the OS keyring)."""
        if self._identity is None:
            from sora_cli.provenance import load_or_create

            self._identity = load_or_create(self.config.paths)
        return self._identity

    def handle(self) -> str:
        import getpass

        return str(self.config.get("handle") or getpass.getuser())

    def _write(self, video: Video, clip: Clip, job: Job, model_hash: str | None,
               safety: dict, before_signing: Callable[[], None]) -> tuple[dict, dict]:
        """Mark (invisible, then visible), encode, sign: the file appears under its name only when signed, and only
        after `before_signing` (the frames' safety verdict) returns."""
        from sora_cli.marks.invisible import ALGORITHM, embed, new_content_id
        from sora_cli.media.atomic import scratch_path
        from sora_cli.media.encode import encode_mp4, jpeg_bytes, sha256_file, write_bytes
        from sora_cli.provenance import ProvenanceClaim, sign_mp4
        from sora_cli.provenance.sign import SIGNABLE_SUFFIXES

        plan, request, output = job.plan, job.plan.request, job.output
        lap = Laps()
        content_id = new_content_id()
        frames = embed(clip.frames, content_id)
        if request.visible_mark:
            from sora_cli.marks.visible import apply_visible

            frames = apply_visible(frames, self.handle(), clip.fps)
        thumbnail = jpeg_bytes(frames[0])
        claim = ProvenanceClaim(
            title=output.name, model_id=plan.model_ref, model_hash=model_hash, seed=plan.seed, steps=plan.steps,
            size=f"{frames.shape[2]}x{frames.shape[1]}", num_frames=len(frames), fps=clip.fps,
            prompt_sha256=ProvenanceClaim.hash_prompt(request.prompt),
            prompt=request.prompt if request.include_prompt else None,
            watermark_id=content_id, watermark_alg=ALGORITHM, visible_mark=request.visible_mark, task=plan.task,
            inputs=plan.parameters().get("inputs", ()), parent_video_id=video.remixed_from_video_id,
            input_faces=safety.get("input_faces"), cameos=plan.cameos,
        )
        sources = plan.conditioning.sources if plan.conditioning is not None else ()
        # inputs in formats C2PA cannot read (BMP, TIFF, ...) are recorded by sha256 in the assertion only
        ingredients = [s.path for s in sources if s.path.suffix.lower() in SIGNABLE_SUFFIXES]
        lap("mark")
        with scratch_path(output, ".mp4") as unsigned:
            encode_mp4(frames, clip.fps, unsigned, audio=clip.audio, sample_rate=clip.sample_rate)
            lap("encode")
            before_signing()  # raises PolicyRefusal for a blocked video: the scratch file goes, nothing is signed
            lap("frames_check")
            # a remixed or extended clip is the parent (parentOf); photos are inputs to the model (inputTo)
            signed = sign_mp4(unsigned, output, claim, self.identity, thumbnail_jpeg=thumbnail,
                              ingredients=ingredients,
                              relationship="parentOf" if plan.task in ("v2v", "extend") else "inputTo")
        lap("sign")
        thumb = self.config.paths.thumbnails_dir / f"{video.id}.jpg"
        write_bytes(thumbnail, thumb)
        video.path = str(output.resolve())
        video.thumbnail_path = str(thumb)
        video.sha256 = sha256_file(output)
        video.watermark_id = watermark_key(content_id)
        video.manifest_label = signed["manifest_label"]
        info = {"visible_mark": request.visible_mark, "signer": self.identity.subject, "watermark": ALGORITHM}
        return info, lap.times

    def _finish(self, video: Video, status: str, error: dict | None = None) -> None:
        video.status = status
        video.error = error
        video.progress = 100 if status == "completed" else video.progress
        video.completed_at = int(time.time())
        self.library.save(video)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self._engine = None
        self._engine_key = None
        if self._sound is not None:
            self._sound.close()
            self._sound = None


def sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Laps:
    """Named wall-clock laps: each call records the time since the previous one."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._last, 3)
        self._last = now


def peak_memory(clip: Clip) -> dict[str, float]:
    """Peak resident memory of this process so far, and the GPU's peak during generation where there is one."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    gpu = {"peak_gpu_mb": clip.info["peak_gpu_mb"]} if "peak_gpu_mb" in clip.info else {}
    return {"peak_rss_mb": round(rss_mb, 1), **gpu}


def _in_background(fn: Callable[..., Any], *args: Any) -> Future:
    """`fn(*args)` in a thread of its own; the Future's `result()` waits for it and raises what it raised."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="sora-check")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)
