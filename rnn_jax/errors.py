"""User-facing errors, and the one rule that turns them into a CLI's exit code: every entry point
prints them as one readable line instead of a traceback."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable


class RnnJaxError(Exception):
    """Base class for problems the user can fix (bad input, bad config, missing data)."""


class ConfigError(RnnJaxError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(RnnJaxError):
    """A data set is missing, empty or laid out in a way we cannot read."""


class ModelFileError(RnnJaxError):
    """An ONNX file is missing, corrupt, not made by rnn-jax, or inconsistent."""


class ResumeError(RnnJaxError):
    """`--resume` points at a run that does not match the requested one."""


class SourceError(RnnJaxError):
    """A camera, video file, image folder or stream cannot be opened."""


class StorageError(RnnJaxError):
    """A file could not be written (disk full, no permission); what was saved before is intact."""


# ---------------------------------------------------------------- the one error-to-exit-code rule
# JAX-free on purpose: the live path (rnn_jax.live, rnn_jax.capture) runs it too.

EXIT_USER_ERROR = 2  # a problem the user can fix: one "error: ..." line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def exit_code(call: Callable[[], object], *, debug: bool, debug_raises: bool = True,
              interrupted: str | None = "\ninterrupted") -> int:
    """Run ``call()`` and turn what it raised into an exit code.

    Returns ``call()``'s own code (an int; anything else counts as 0), 2 after printing
    ``error: <message>`` for an :class:`RnnJaxError`, 130 after printing ``interrupted`` (unless
    None) for Ctrl-C. ``debug``: the traceback matters more than the one line; with
    ``debug_raises`` the exception propagates, else the traceback is printed and the code stays 2
    (the camera apps, whose callers test the code)."""
    try:
        result = call()
    except RnnJaxError as exc:
        if debug and debug_raises:
            raise
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if debug and debug_raises:
            raise
        if interrupted is not None:
            print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def main_guard(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run a CLI's ``main(argv)``: user errors become one readable line and exit code 2 (``--debug``
    shows the traceback), Ctrl-C exit code 130; a non-zero int that ``main`` returns is the exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    code = exit_code(lambda: main(argv), debug=debug)
    if code:
        raise SystemExit(code)
