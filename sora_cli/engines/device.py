"""Where a pipeline runs: the device, the dtypes, and how much of it is offloaded to CPU memory."""

from __future__ import annotations

from typing import Any

from sora_cli.errors import GpuOutOfMemory, UsageError

# from least to most offload; `auto` starts where memory allows and steps right once on OOM
OFFLOAD_LADDER = ("none", "model", "group", "sequential")
_HEADROOM = 3 << 30  # activations, VAE decode and the CUDA context


def pick_device(requested: str | None) -> str:
    import torch

    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {requested}: no CUDA device is available (torch {torch.__version__})")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps: Apple's Metal backend is not available here")
    if requested != "cpu" and not requested.startswith(("cuda", "mps")):
        raise UsageError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {requested!r}")
    return requested


def load_dtype(device: str, vae_fp32: bool) -> Any:
    """bf16 on GPU (the VAE in fp32 where the family needs it), fp32 on CPU."""
    import torch

    if device == "cpu":
        return torch.float32
    if vae_fp32:
        return {"default": torch.bfloat16, "vae": torch.float32}
    return torch.bfloat16


def module_bytes(pipe: Any) -> dict[str, int]:
    import torch

    sizes = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            sizes[name] = sum(p.numel() * p.element_size() for p in component.parameters())
    return sizes


def choose_offload(requested: str, device: str, pipe: Any) -> str:
    """`auto`: no offload if everything fits, whole-model offload if the largest part fits, else groups."""
    if requested != "auto":
        return requested
    if not device.startswith("cuda"):
        return "none"
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    sizes = module_bytes(pipe)
    if sum(sizes.values()) + _HEADROOM <= free:
        return "none"
    if max(sizes.values(), default=0) + _HEADROOM <= free:
        return "model"
    return "group"


def apply_offload(pipe: Any, mode: str, device: str) -> None:
    import torch

    if mode == "none" or device == "cpu":
        pipe.to(device)
    elif mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_type="leaf_level", use_stream=True)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        raise UsageError(f"unknown offload mode {mode!r}")


def next_offload(mode: str) -> str | None:
    index = OFFLOAD_LADDER.index(mode)
    return OFFLOAD_LADDER[index + 1] if index + 1 < len(OFFLOAD_LADDER) else None


def out_of_memory(mode: str) -> GpuOutOfMemory:
    fix = next_offload(mode)
    if fix:
        return GpuOutOfMemory(f"out of GPU memory with --offload {mode}; retry with --offload {fix} "
                              f"(or a smaller --size / fewer --seconds)")
    return GpuOutOfMemory("out of GPU memory even with --offload sequential; use a smaller --size, "
                          "fewer --seconds, or a smaller model")


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
