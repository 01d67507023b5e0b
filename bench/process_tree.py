"""A whole command, timed: its output lines as they come, and the peak memory of its process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# VmHWM (the peak) only rises: reading it often enough is exact but for a process's last moments.
SAMPLE_INTERVAL_S = 0.02
# Finding the tree's new processes means reading all of /proc: less often.
TREE_SCAN_INTERVAL_S = 0.5


@dataclass
class CommandRun:
    seconds: float
    lines: list[tuple[float, str]]
    peaks_mb: dict[str, float] = field(default_factory=dict)


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process /proc shows."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        table[int(entry.name)] = (int(stat[stat.rindex(")") + 2:].split()[1]), name)
    return table


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree(root: int) -> dict[int, str]:
    """pid -> kind ("driver", "jvm" or "other") of `root` and every process under it."""
    table = _process_table()
    kinds, frontier = {root: "driver"}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, name) in table.items():
            if ppid == parent and pid not in kinds:
                kinds[pid] = "jvm" if name == "java" else "other"
                frontier.append(pid)
    return kinds


def sample_tree(root: int, peaks: dict[str, float], done: threading.Event) -> None:
    """Until `done`: the peak resident memory (VmHWM) of the driver, the JVM and the largest other process."""
    kinds: dict[int, str] = {root: "driver"}
    next_scan = 0.0
    while not done.is_set():
        if time.monotonic() >= next_scan:
            kinds.update(_tree(root))
            next_scan = time.monotonic() + TREE_SCAN_INTERVAL_S
        for pid, kind in kinds.items():
            peaks[kind] = max(peaks.get(kind, 0.0), _peak_rss_mb(pid))
        done.wait(SAMPLE_INTERVAL_S)


def run_command(argv: list[str], env: dict[str, str] | None = None, stop_at: str | None = None) -> CommandRun:
    """The whole process: wall time, each output line with its time, the tree's peak memory.

    Not the kernel's ru_maxrss from wait4: a child forked from this process counts this
    process's memory at the fork, so every figure would be at least the benchmark's own.
    `stop_at`: the command (its whole process group) is killed at its first line starting with it,
    and measured up to there.
    """
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})}, start_new_session=stop_at is not None)
    peaks: dict[str, float] = {}
    done = threading.Event()
    sampler = threading.Thread(target=sample_tree, args=(proc.pid, peaks, done), daemon=True)
    sampler.start()
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - began, line.rstrip("\n")))
        if stop_at is not None and line.startswith(stop_at):
            done.set()  # the peaks up to this line
            os.killpg(proc.pid, signal.SIGKILL)
            break
    code = proc.wait()
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    if stop_at is not None and code == -signal.SIGKILL:
        return CommandRun(seconds, lines, peaks)
    if code != 0:
        tail = "\n".join(line for _, line in lines[-20:])
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {code}:\n{tail}")
    return CommandRun(seconds, lines, peaks)
