"""One error type for everything a user can get wrong or lack.

Every user-facing failure is a :class:`VbgError` that carries *what* failed and *how to fix it*.
The CLI prints ``error: <what> — <fix>`` on one line and exits with the error's code; the GUI shows
the same text.  Exit codes: 2 = bad input (a file, an option), 3 = a device is unavailable
(camera, virtual camera, GPU provider), 4 = an output failed while running (the disk holding a recording
filled up or stopped taking data; what was recorded until then is kept and the message says where).
"""
from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_DEVICE_UNAVAILABLE = 3
EXIT_OUTPUT_FAILED = 4


class VbgError(Exception):
    """A failure the user can act on."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, what: str, fix: str = "") -> None:
        self.what = what.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(self.one_line())

    def one_line(self) -> str:
        if not self.fix:
            return f"{self.what}."
        return f"{self.what}. {self.fix[0].upper()}{self.fix[1:]}."


class BadInput(VbgError):
    """A file, option or frame the user supplied is unusable (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


class DeviceUnavailable(VbgError):
    """A camera, virtual camera or accelerator cannot be used (exit code 3)."""

    exit_code = EXIT_DEVICE_UNAVAILABLE


class OutputFailed(VbgError):
    """An output stopped working mid-run: a recording's disk is full, removed or refuses data (exit code 4).

    Unlike a virtual camera that is lost for a moment, a failed file output does not come back: the sink
    has already closed the file (keeping what was written playable) and the run ends."""

    exit_code = EXIT_OUTPUT_FAILED


def describe(exc: BaseException | None) -> str:
    """One line for any exception: a :class:`VbgError`'s own line (what, fix), else ``Type: message``."""
    if exc is None:
        return ""
    return exc.one_line() if isinstance(exc, VbgError) else f"{type(exc).__name__}: {exc}"


def problem(exc: BaseException | None) -> str:
    """What failed, without the fix (a shell that handles the failure gives its own advice)."""
    return exc.what if isinstance(exc, VbgError) else describe(exc)


def guarded(run, args) -> int:
    """``run(args)``'s exit code; a :class:`VbgError` becomes ``error: <what>. <fix>.`` on stderr and its code."""
    import sys

    try:
        return int(run(args) or 0)
    except VbgError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def run_command(prog: str, description: str, add_arguments, run, argv=None, verbose_flag: bool = False) -> int:
    """Stand-alone ``main()`` of a subcommand module: parse, then :func:`guarded` (same as ``vbg <command>``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog=prog, description=description)
    if verbose_flag:
        parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    return guarded(run, parser.parse_args(sys.argv[1:] if argv is None else argv))
