"""Memory, thread and load figures of this process on every OS the app ships for.

psutil gives them on Linux, Windows and macOS. Without psutil, Linux reads ``/proc`` and other Unix systems
``resource.getrusage``; a figure no method can give is None (or -1 for a count). Unix-only modules
(``resource``) are imported where they are used, so importing this module works everywhere.
"""
from __future__ import annotations

import os
import sys


def _process():
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process()


def rss_mb() -> float | None:
    """Current resident set of this process in MiB, or None where no method gives it."""
    proc = _process()
    if proc is not None:
        return proc.memory_info().rss / 2**20
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def peak_rss_mb() -> float | None:
    """Peak resident set of this process so far in MiB (process-wide, never below the current figure)."""
    current = rss_mb()
    peak = None
    try:
        import resource  # Unix only
    except ImportError:
        proc = _process()
        info = proc.memory_info() if proc is not None else None
        if info is not None and hasattr(info, "peak_wset"):  # Windows: the peak working set
            peak = info.peak_wset / 2**20
    else:
        raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = raw / 2**20 if sys.platform == "darwin" else raw / 1024  # bytes on macOS, KiB elsewhere
    if peak is None:
        return current
    return max(peak, current or 0.0)  # the kernel updates ru_maxrss lazily: never report peak < current


def os_threads() -> int:
    """Threads of this process as the OS sees them (native ones too, e.g. onnxruntime's), or -1."""
    proc = _process()
    if proc is not None:
        return proc.num_threads()
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return -1


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load average, or None where the OS has none (Windows without psutil)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None
