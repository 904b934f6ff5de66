"""Outcomes of sandboxed code, as data: a status, a value, a message and a traceback."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How one sandboxed operation (compile, load or hook call) ended."""

    OK = "ok"
    COMPILE_ERROR = "compile_error"
    POLICY_VIOLATION = "policy_violation"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASH = "crash"
    CONTRACT_VIOLATION = "contract_violation"

    @property
    def is_fault(self) -> bool:
        """True for every status but OK."""
        return self is not Status.OK


@dataclass(frozen=True)
class Outcome:
    """The result of one sandboxed operation.

    ``value`` is plain JSON-able data (only when ``status`` is OK);
    ``message`` says in words what happened; ``traceback`` is the text of the
    traceback inside the worker, when there was one; ``layer`` names the layer
    that stopped the code (``policy``, ``audit``, ``rlimit``, ``timeout``,
    ``host``) or is empty.
    """

    status: Status
    value: Any = None
    message: str = ""
    traceback: str = ""
    elapsed_s: float = 0.0
    layer: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def as_fault(self, status: Status, message: str, layer: str = "host") -> Outcome:
        """A copy with a fault status (used when the host rejects a returned value)."""
        return dataclasses.replace(self, status=status, value=None, message=message, layer=layer)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "value": self.value,
            "message": self.message,
            "traceback": self.traceback,
            "elapsed_s": self.elapsed_s,
            "layer": self.layer,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        value = data["status"]
        try:
            status = _STATUS_BY_VALUE[value]  # Status(value), without the enum call
        except (KeyError, TypeError):
            status = Status(value)
        return cls(
            status=status,
            value=data.get("value"),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            layer=str(data.get("layer", "")),
        )


_STATUS_BY_VALUE: dict[Any, Status] = {s.value: s for s in Status}


class SandboxError(Exception):
    """Base of the sandbox package's exceptions (host-side misuse, never mechanism faults)."""


class WorkerStartError(SandboxError):
    """The worker process could not be started."""
