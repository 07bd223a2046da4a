"""What more than one benchmark measures the same way (not a benchmark itself).

Memory is read from /proc (Linux only): the resident set now (`VmRSS`) and its peak
(`VmHWM`), which `reset_peak` starts afresh so that loading the model does not count
as the measured call's cost.
"""

from __future__ import annotations


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in MiB; NaN when absent."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start the peak (VmHWM) afresh from the current resident set."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
