"""Every expected failure is a SoraError: one line for the user and a named exit code.

    SoraError                  exit 1  (ERROR)
    ├── UsageError             exit 2  bad option values, bad batch lines, bad prompts
    │   └── ValidationError        a request that breaks a model family's rules
    ├── InputError             exit 9  an input photo or clip that cannot be read (empty, corrupt, no video)
    ├── ModelError             exit 1  missing / damaged / unsupported model folders, hub unreachable
    ├── OutputError            exit 1  an output folder that is missing or not writable
    ├── ServerUnreachable      exit 3
    ├── GpuOutOfMemory         exit 4  names the --offload value that fixes it
    ├── PolicyRefusal          exit 5  moderation or consent said no
    ├── ProvenanceInvalid      exit 6
    └── PluginError            exit 7
verify-provenance exits with the code of its worst file: 6 altered, 9 unreadable, 8 no manifest,
10 untrusted (only with --require-trusted), 0 intact.
Ctrl-C is exit 130 (INTERRUPTED); unexpected exceptions are exit 1 and show a traceback only with --debug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    SERVER_UNREACHABLE = 3
    OUT_OF_MEMORY = 4
    POLICY = 5
    PROVENANCE_INVALID = 6
    PLUGIN = 7
    NO_PROVENANCE = 8  # verify-provenance: no manifest (a watermark may still be found)
    UNREADABLE = 9  # an input (photo, clip, file to verify) that cannot be read
    UNTRUSTED = 10  # verify-provenance --require-trusted: intact, but the signer is not trusted
    INTERRUPTED = 130


class SoraError(Exception):
    """An expected failure: its message is shown as one line, its exit code is returned."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(SoraError):
    exit_code = ExitCode.USAGE


class ValidationError(UsageError):
    pass


class InputError(SoraError):
    """An input photo or video that is empty, corrupt, not media, or has no video stream."""

    exit_code = ExitCode.UNREADABLE


class ModelError(SoraError):
    pass


class OutputError(SoraError):
    pass


class ServerUnreachable(SoraError):
    exit_code = ExitCode.SERVER_UNREACHABLE


class GpuOutOfMemory(SoraError):
    exit_code = ExitCode.OUT_OF_MEMORY


class PolicyRefusal(SoraError):
    exit_code = ExitCode.POLICY


class ProvenanceInvalid(SoraError):
    exit_code = ExitCode.PROVENANCE_INVALID


class PluginError(SoraError):
    exit_code = ExitCode.PLUGIN


class Cancelled(SoraError):
    """A job stopped by Ctrl-C; nothing was left under its final name."""

    exit_code = ExitCode.INTERRUPTED
