"""Sign an MP4 with a C2PA manifest that says what made it, atomically.

The manifest (c2pa manifest definition JSON, `build_manifest`):

    {"label": "urn:c2pa:<uuid4>", "title": ..., "format": "video/mp4",
     "claim_generator_info": [{"name": "sora-cli", "version": "0.1.0"}],
     "thumbnail": {"format": "image/jpeg", "identifier": "thumbnail.jpg"},          # when we have one
     "assertions": [
       {"label": "c2pa.actions", "data": {"actions": [
          {"action": "c2pa.created", "digitalSourceType": ".../trainedAlgorithmicMedia",
           "softwareAgent": {"name": <model id>, "version": <model hash[:12]>}, "when": <iso time>}]}},
          # with parents instead: c2pa.opened (parameters.ingredientIds = [the parent]), then c2pa.edited
       {"label": "org.sora-cli.generation", "data": {"model": {"id", "hash"}, "seed", "steps", "size",
          "num_frames", "fps", "prompt_sha256", "prompt"?, "cameos": [...], "visible_mark", "created_at"}},
       {"label": "c2pa.soft-binding", "data": {"alg": <watermark algorithm>, "name": "invisible watermark id",
          "blocks": [{"scope": {"timespan": {"start": 0, "end": <ms>}}, "value": <base64 of the 64-bit id, BE>}],
          "pad": []}}]}                                                        # when the clip carries a watermark

No timestamp authority is used (no network): the signing time is the signer's own claim, and once the
certificate expires verifiers report "intact_expired" rather than "trusted".
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import os
import stat
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli import __version__
from sora_cli.errors import ProvenanceInvalid, UsageError
from sora_cli.media.atomic import atomic_path
from sora_cli.provenance.keys import CallbackSigner, SigningIdentity
from sora_cli.provenance.trust import make_context

GENERATION_LABEL = "org.sora-cli.generation"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SIGNABLE_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".jpg", ".jpeg", ".png", ".webp", ".gif"})
_FORMATS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".jpg": "image/jpeg",
            ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif"}


@dataclass(frozen=True)
class ProvenanceClaim:
    """What the manifest states about one generated clip."""

    title: str
    model_id: str
    model_hash: str | None
    seed: int
    steps: int
    size: str
    num_frames: int
    fps: int
    prompt_sha256: str
    prompt: str | None = None  # only when the user asked for the prompt to travel with the clip
    cameos: tuple[str, ...] = ()
    watermark_id: int | None = None
    watermark_alg: str | None = None
    visible_mark: bool = False
    task: str = "t2v"
    # what the clip was made from: {"role", "file", "sha256", "video_id"?} for every photo or clip given
    inputs: tuple[dict[str, Any], ...] = ()
    parent_video_id: str | None = None
    input_faces: dict[str, Any] | None = None  # faces in the inputs: count, cameos matched, consent attested
    software_name: str = "sora-cli"
    software_version: str = __version__
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameos", tuple(self.cameos))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.watermark_id is not None:
            if not 0 <= self.watermark_id < 2**64:
                raise UsageError(f"the watermark id must fit in 64 bits, got {self.watermark_id}")
            if not self.watermark_alg:
                raise UsageError("a watermark id needs the name of its algorithm")
        if len(self.prompt_sha256) != 64:
            raise UsageError("prompt_sha256 must be a hex SHA-256")

    @staticmethod
    def hash_prompt(prompt: str) -> str:
        return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def soft_binding_value(watermark_id: int) -> str:
    """The soft-binding block value: base64 of the 64-bit id, big-endian (the spec leaves the format to the alg)."""
    return base64.b64encode(watermark_id.to_bytes(8, "big")).decode("ascii")


def generation_data(claim: ProvenanceClaim) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": {"id": claim.model_id, "hash": claim.model_hash}, "seed": claim.seed, "steps": claim.steps,
        "size": claim.size, "num_frames": claim.num_frames, "fps": claim.fps,
        "prompt_sha256": claim.prompt_sha256, "cameos": list(claim.cameos), "visible_mark": claim.visible_mark,
        "created_at": claim.created_at, "task": claim.task,
    }
    if claim.inputs:
        data["inputs"] = [dict(item) for item in claim.inputs]
    if claim.parent_video_id:
        data["parent_video_id"] = claim.parent_video_id
    if claim.input_faces is not None:
        data["input_faces"] = dict(claim.input_faces)
    if claim.prompt is not None:
        data["prompt"] = claim.prompt
    return data


def build_manifest(claim: ProvenanceClaim, ingredient_labels: Sequence[str] = (), *, thumbnail: bool = False,
                   label: str | None = None, relationship: str = "parentOf") -> dict[str, Any]:
    """The c2pa manifest definition for `claim` (see the module docstring)."""
    agent = {"name": claim.model_id}
    if claim.model_hash:
        agent["version"] = claim.model_hash[:12]
    if ingredient_labels and relationship == "inputTo":  # photos the model was given: still a new creation
        actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                    "softwareAgent": agent, "when": claim.created_at,
                    "parameters": {"ingredientIds": list(ingredient_labels)}}]
    elif ingredient_labels:
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [ingredient_labels[0]]}}]
        actions += [{"action": "c2pa.placed", "parameters": {"ingredientIds": [extra]}}
                    for extra in ingredient_labels[1:]]
        actions.append({"action": "c2pa.edited", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                        "softwareAgent": agent, "when": claim.created_at})
    else:
        actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                    "softwareAgent": agent, "when": claim.created_at}]
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions", "data": {"actions": actions}},
        {"label": GENERATION_LABEL, "data": generation_data(claim)},
    ]
    if claim.watermark_id is not None:
        end_ms = round(1000 * claim.num_frames / claim.fps) if claim.fps else 0
        assertions.append({"label": "c2pa.soft-binding", "data": {
            "alg": claim.watermark_alg, "name": "invisible watermark id", "pad": [],
            "blocks": [{"scope": {"timespan": {"start": 0, "end": end_ms}},
                        "value": soft_binding_value(claim.watermark_id)}]}})
    manifest: dict[str, Any] = {
        "label": label or f"urn:c2pa:{uuid.uuid4()}", "title": claim.title, "format": "video/mp4",
        "claim_generator_info": [{"name": claim.software_name, "version": claim.software_version}],
        "assertions": assertions,
    }
    if thumbnail:
        manifest["thumbnail"] = {"format": "image/jpeg", "identifier": "thumbnail.jpg"}
    return manifest


def grab_thumbnail(video: Path, long_edge: int = 320) -> bytes | None:
    """First frame as a JPEG via ffmpeg, or None (best effort: a clip without thumbnail still gets signed)."""
    try:
        import imageio_ffmpeg

        scale = f"scale='if(gt(iw,ih),min({long_edge},iw),-2)':'if(gt(iw,ih),-2,min({long_edge},ih))'"
        result = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(video), "-frames:v", "1", "-vf", scale,
             "-f", "image2pipe", "-vcodec", "mjpeg", "-"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError, ImportError):
        return None
    return result.stdout if result.returncode == 0 and result.stdout[:2] == b"\xff\xd8" else None


def _signer_for(identity: SigningIdentity | CallbackSigner) -> CallbackSigner:
    if isinstance(identity, SigningIdentity):
        return identity.signer()
    if isinstance(identity, CallbackSigner):
        return identity
    raise UsageError(f"cannot sign with a {type(identity).__name__}; give a SigningIdentity or a CallbackSigner")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def sign_mp4(src: Path, dst: Path, claim: ProvenanceClaim, identity: SigningIdentity | CallbackSigner,
             ingredients: Sequence[Path] = (), thumbnail_jpeg: bytes | None = None,
             relationship: str = "parentOf") -> dict[str, Any]:
    """Write `src` + a signed manifest to `dst` (may be `src`): temp file beside dst, renamed only on success.

    `relationship` is "parentOf" (the first ingredient is what was edited, others are componentOf) or
    "inputTo" (every ingredient was an input to the model that created the clip, e.g. a photo to animate).
    """
    if relationship not in ("parentOf", "inputTo"):
        raise UsageError(f"relationship must be parentOf or inputTo, not {relationship!r}")
    import c2pa

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise UsageError(f"cannot sign {src}: no such file")
    parents = [Path(p) for p in ingredients]
    for parent in parents:
        if not parent.is_file():
            raise UsageError(f"ingredient {parent} does not exist")
    signer = _signer_for(identity)
    started = time.perf_counter()
    if thumbnail_jpeg is None:
        thumbnail_jpeg = grab_thumbnail(src)
    labels = [f"ingredient-{i}" for i in range(len(parents))]
    manifest = build_manifest(claim, labels, thumbnail=thumbnail_jpeg is not None, relationship=relationship)
    mode = stat.S_IMODE(src.stat().st_mode)
    c2pa_signer, callback_failures = signer.to_c2pa()
    context = make_context(signing=True)
    try:
        with contextlib.ExitStack() as stack:
            builder = stack.enter_context(c2pa.Builder(manifest, context=context))
            if thumbnail_jpeg is not None:
                builder.add_resource("thumbnail.jpg", io.BytesIO(thumbnail_jpeg))
            for index, (parent, label) in enumerate(zip(parents, labels, strict=True)):
                role = relationship if relationship == "inputTo" or index == 0 else "componentOf"
                fmt = _FORMATS.get(parent.suffix.lower(), "video/mp4")
                try:
                    with open(parent, "rb") as handle:
                        builder.add_ingredient({"title": parent.name, "relationship": role, "label": label},
                                               fmt, handle)
                except c2pa.C2paError as exc:
                    raise UsageError(f"ingredient {parent.name} cannot be used: {_one_line(exc)}") from None
            tmp = stack.enter_context(atomic_path(dst))  # entered before src opens: src is closed before rename
            source = stack.enter_context(open(src, "rb"))
            with open(tmp, "w+b") as out:
                manifest_bytes = builder.sign(c2pa_signer, "video/mp4", source, out)
            os.chmod(tmp, mode)  # signing does not change who may read the clip
    except c2pa.C2paError as exc:
        if callback_failures:
            raise ProvenanceInvalid(f"signing {dst.name} failed: the signer raised {callback_failures[0]}") from None
        raise ProvenanceInvalid(f"signing {dst.name} failed: {_one_line(exc)}") from None
    except OSError as exc:
        raise ProvenanceInvalid(f"signing {dst.name} failed: {exc.strerror or type(exc).__name__}") from None
    finally:
        with contextlib.suppress(Exception):
            c2pa_signer.close()
        with contextlib.suppress(Exception):
            context.close()
    size = dst.stat().st_size
    soft = None
    if claim.watermark_id is not None:
        soft = {"alg": claim.watermark_alg, "value": soft_binding_value(claim.watermark_id),
                "watermark_id": claim.watermark_id}
    return {
        "path": str(dst), "manifest_label": manifest["label"], "manifest_bytes": len(manifest_bytes),
        "bytes": size, "thumbnail": thumbnail_jpeg is not None, "ingredients": [str(p) for p in parents],
        "soft_binding": soft, "algorithm": signer.algorithm, "timestamp_authority": None,
        "seconds": round(time.perf_counter() - started, 4),
    }
