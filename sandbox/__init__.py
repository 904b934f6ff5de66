"""bilevel.sandbox: runs mechanism source (see ``mechanisms.contract``) under layered protection.

- ``sandbox.policy``: layer 1, the restricted dialect (RestrictedPython plus allow-list guards).
- ``sandbox.facades``: the frozen module facades a mechanism may import.
- ``sandbox.worker``: layer 2, the isolated worker process (rlimits, audit hook, ...).
- ``sandbox.session``: the host side; plain data in and out, validated (layer 3).

It may import only ``bilevel.mechanisms``.
"""

from __future__ import annotations

from bilevel.sandbox.outcome import Outcome, SandboxError, Status, WorkerStartError
from bilevel.sandbox.policy import PolicyViolation, compile_mechanism
from bilevel.sandbox.session import Limits, SandboxSession

__all__ = [
    "Limits",
    "Outcome",
    "PolicyViolation",
    "SandboxError",
    "SandboxSession",
    "Status",
    "WorkerStartError",
    "compile_mechanism",
]
