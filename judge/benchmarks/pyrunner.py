"""Child-process runner for the ``python`` benchmark: ``python pyrunner.py module:function [path...]``.

Run as a plain script (not ``-m``) so the child does not import the benchmark registry.

Reads ``$BILEVEL_INPUT`` (config, instance, seed), calls the function, writes
``{"score": ..., "subscores": ...}`` to ``$BILEVEL_RESULT``. A function may
return a number or a dict with ``score`` and optional ``subscores``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys


def main(argv: list[str]) -> int:
    target, paths = argv[0], argv[1:]
    sys.path[:0] = paths
    module_name, _, func_name = target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        print(f"cannot load {target!r}: {exc}; give 'package.module:function' importable from pythonpath",
              file=sys.stderr)
        return 2
    with open(os.environ["BILEVEL_INPUT"], encoding="utf-8") as fh:
        payload = json.load(fh)
    value = func(payload["config"], payload["instance"], payload["seed"])
    result = value if isinstance(value, dict) else {"score": value}
    with open(os.environ["BILEVEL_RESULT"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
