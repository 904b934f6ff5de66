"""bilevel.sandbox: runs mechanism source (see ``mechanisms.contract``) under layered protection.

- ``sandbox.policy``: layer 1, the restricted dialect (the RestrictedPython compiler and its rules);
  ``sandbox.guards`` its run-time guards, ``sandbox.restricted_builtins`` a mechanism's globals.
- ``sandbox.facades``: the frozen module facades a mechanism may import.
- ``sandbox.worker``: layer 2, the fork server and the start-up of each isolated worker;
  ``sandbox.hardening`` its OS layers (rlimits, seccomp, audit hook, namespaces); ``sandbox.hooks`` its request handling
  (the message shapes and what it does for one hook request); ``sandbox.results`` plain values
  and outcomes.
- ``sandbox.session``: the host side; plain data in and out, validated (layer 3);
  ``sandbox.process`` the fork server and worker processes and their pipes, ``sandbox.faults``
  the fault policy, ``sandbox.channel`` the authentication of the protocol lines.
- ``sandbox.lifetime``: the parent-death signal every process bilevel starts asks for.

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
