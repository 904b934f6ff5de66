"""Plain data in the worker: the copies each hook call gets (``sandbox.hooks``).

Mechanisms receive fresh copies of everything (ctx, candidate, trial) and may mutate them freely; a dry
call's ``state`` is snapshotted and put back. These helpers make those copies.
"""

from __future__ import annotations

import json
import marshal
from json import encoder as _json_encoder
from typing import Any

_C_ENCODER = getattr(_json_encoder, "c_make_encoder", None)
_DEFAULT = json.JSONEncoder(sort_keys=True, allow_nan=True)
_COMPACT = json.JSONEncoder(allow_nan=True, separators=(",", ":"))
_FAST_COMPACT = None if _C_ENCODER is None else _C_ENCODER(None, _COMPACT.default,
                                                           _json_encoder.encode_basestring_ascii, None, ":", ",",
                                                           False, False, True)
_FAST = None if _C_ENCODER is None else _C_ENCODER(None, _DEFAULT.default, _json_encoder.encode_basestring_ascii,
                                                   None, ": ", ", ", True, False, True)


def state_snapshot(state: dict[str, Any]) -> bytes | None:
    """A mechanism's ``state`` as marshal data, or None where it holds something marshal cannot copy."""
    try:
        return marshal.dumps(state)
    except (ValueError, TypeError, RecursionError):
        return None


def canonical_json(value: Any) -> str:
    """Plain data as canonical JSON: exactly ``json.dumps(value, sort_keys=True, allow_nan=True)``.

    The key of guidance and candidates on both sides (``sandbox.steps``, ``inner.counterfactual``), made
    straight by the C encoder that ``json.dumps`` ends in, one built once without the circular-reference
    check: a cyclic value recurses until ``RecursionError`` and is then encoded again with the check, so it
    raises what ``json.dumps`` raises."""
    if value is None:
        return "null"
    return _encode(_FAST, _DEFAULT, value)


def compact_json(value: Any) -> str:
    """Exactly ``json.dumps(value, allow_nan=True, separators=(",", ":"))`` (the protocol's lines, the size of a
    returned value), by one C encoder built once, as :func:`canonical_json` does."""
    return _encode(_FAST_COMPACT, _COMPACT, value)


def _encode(fast: Any, checked: json.JSONEncoder, value: Any) -> str:
    """``value`` by the C encoder ``fast`` (built without the circular check), or by ``checked`` for a string,
    where no C encoder exists, and for a cyclic value (so it raises what ``json.dumps`` raises)."""
    if fast is None or isinstance(value, str):
        return checked.encode(value)
    try:
        return "".join(fast(value, 0))
    except RecursionError:
        return checked.encode(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def copy_plan(entry: Any) -> tuple[str, ...] | bytes:
    """How to copy plain data ``entry`` (:func:`fresh`, :meth:`Worker.ctx`): for a dict, the keys whose values
    are flat containers (dicts or lists of numbers, strings, booleans and None, each a distinct object;
    each is copied with ``.copy()`` after the dict itself); for anything else (deeper data, shared
    containers, other types), its marshal data, which :func:`fresh` loads instead."""
    keys: list[str] = []
    if type(entry) is dict:
        for key, value in entry.items():
            kind = type(value)
            if kind in _SCALARS:
                continue
            items = value.values() if kind is dict else value if kind is list else None
            if items is None or not all(type(x) in _SCALARS for x in items):
                return marshal.dumps(entry)
            keys.append(key)
        if len(keys) > 1 and len({id(entry[k]) for k in keys}) < len(keys):
            return marshal.dumps(entry)  # one container under two keys: marshal keeps it shared
        return tuple(keys)
    return marshal.dumps(entry)


def fresh(value: Any) -> Any:
    """A deep copy of plain data: the value of ``marshal.loads(marshal.dumps(value))``, made with ``.copy()``
    where the data is a scalar, a flat list, or a dict of scalars and flat containers (:func:`copy_plan`)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list and all(type(x) in _SCALARS for x in value):
        return value.copy()
    plan = copy_plan(value)
    if isinstance(plan, bytes):
        return marshal.loads(plan)
    out = value.copy()
    for key in plan:
        out[key] = out[key].copy()
    return out


def copy_entries(entries: list[Any], plans: list[tuple[str, ...] | bytes]) -> list[Any]:
    """Fresh copies of ``entries``, each by its plan (:func:`copy_plan`): the worker's history in a ctx."""
    out: list[Any] = []
    add = out.append
    for entry, plan in zip(entries, plans, strict=True):
        if isinstance(plan, bytes):
            add(marshal.loads(plan))
            continue
        entry = entry.copy()
        for key in plan:
            entry[key] = entry[key].copy()
        add(entry)
    return out
