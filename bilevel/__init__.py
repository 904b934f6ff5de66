"""bilevel: a bilevel meta-research engine; this module is its public API.

- ``bilevel.__version__``: the installed version.
- ``bilevel.StackSampler``: a discovered mechanism stack as an optuna sampler.
- ``bilevel.run(spec)``: run the bilevel loop on a spec (a dict or a TOML path); returns the summary.
- ``bilevel.open_store(path)``: a run store, read as plain data (and as pandas DataFrames).

The rooms are subpackages: ``bilevel.mechanisms <- bilevel.sandbox <- bilevel.inner <-
bilevel.judge <- bilevel.outer <- bilevel.runs`` (each imports only those to its left). This
module sits above them all and imports them lazily, on first use of a name, so that importing
``bilevel.sandbox`` in a sandbox worker does not pull in the run store or optuna.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("bilevel")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

_LAZY = {
    "StackSampler": ("bilevel.runs.optuna_sampler", "StackSampler"),
    "run": ("bilevel.runs.api", "run"),
    "open_store": ("bilevel.runs.api", "open_store"),
}

__all__ = ["StackSampler", "__version__", "open_store", "run"]


def __getattr__(name: str) -> Any:
    """Import the public names on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'bilevel' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
