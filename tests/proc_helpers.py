"""Process checks shared by the sandbox tests (read from /proc; Linux only)."""

from __future__ import annotations

import os
from pathlib import Path


def process_gone(pid: int) -> bool:
    """True once ``pid`` is neither running nor a zombie (it was reaped)."""
    return not Path(f"/proc/{pid}").exists()


def worker_children() -> list[int]:
    """Child processes of this test process that run a sandbox worker (running or unreaped)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"bilevel.sandbox.worker" in cmdline:
            out.append(int(entry.name))
    return out
