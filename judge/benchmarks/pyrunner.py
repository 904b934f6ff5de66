"""Child-process runner for the ``python`` benchmark.

``python pyrunner.py --serve module:function [path...]`` (what the benchmark
uses): a long-lived child that imports the callable once, says hello on its
reply channel (``{"ready": true}`` or ``{"error": ...}``), then answers one
JSON line per trial: it reads ``{"config", "instance", "seed"}`` from stdin
and writes ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": ...,
"traceback": ...}`` on the stdout it started with. The callable's own prints
go to stderr, so they never corrupt the channel. The child exits on stdin's
end or when its parent dies.

``python pyrunner.py module:function [path...]`` runs one trial the old way
(``$BILEVEL_INPUT`` in, ``$BILEVEL_RESULT`` out); ``bench/python_benchmark.py``
measures it as the baseline.

Run as a plain script (not ``-m``) so the child does not import the benchmark registry.
A function may return a number or a dict with ``score`` and optional ``subscores``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any


def load(target: str, paths: list[str]) -> Callable[..., Any]:
    sys.path[:0] = paths
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    if not callable(func):
        raise TypeError(f"{func_name!r} in {module_name} is a {type(func).__name__}, not a function")
    return func  # type: ignore[no-any-return]


def _load_error(target: str, exc: BaseException) -> str:
    return (f"cannot load {target!r}: {type(exc).__name__}: {exc}; give 'package.module:function' importable "
            "from pythonpath or workdir")


def _as_result(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"score": value}


def _watch_parent(parent: int) -> None:
    """End this child when the process that started it is gone (a long trial included)."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def serve(target: str, paths: list[str]) -> int:
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the callable's prints go to stderr
    sys.stdout = sys.stderr
    requests = sys.stdin
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    def send(obj: dict[str, Any]) -> None:
        reply.write(json.dumps(obj, allow_nan=True) + "\n")
        reply.flush()

    try:
        func = load(target, paths)
    except Exception as exc:  # the user's module: anything may go wrong on import
        send({"error": _load_error(target, exc), "traceback": traceback.format_exc()[-2000:]})
        return 2
    send({"ready": True})
    for line in requests:
        payload = json.loads(line)
        try:
            result = _as_result(func(payload["config"], payload["instance"], payload["seed"]))
            text = json.dumps({"ok": True, "result": result}, allow_nan=True)
        except Exception as exc:  # the user's function failed on this trial: data, not a crash
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
            continue
        reply.write(text + "\n")
        reply.flush()
    return 0


def once(target: str, paths: list[str]) -> int:
    try:
        func = load(target, paths)
    except Exception as exc:  # the user's module: anything may go wrong on import
        print(_load_error(target, exc), file=sys.stderr)
        return 2
    with open(os.environ["BILEVEL_INPUT"], encoding="utf-8") as fh:
        payload = json.load(fh)
    result = _as_result(func(payload["config"], payload["instance"], payload["seed"]))
    with open(os.environ["BILEVEL_RESULT"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serve":
        return serve(argv[1], argv[2:])
    return once(argv[0], argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
