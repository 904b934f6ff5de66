"""Pure functions over the JSON form of a search space.

This module is part of the mechanism contract: it is exposed, as it is, to
sandboxed mechanism code (``import spacekit``) and it is what ``inner.space``
uses for its unit-cube encoding, so the host and every mechanism agree on one
encoding. Every function takes and returns plain JSON-able data only.

The JSON form of a space is ``{"params": [P, ...]}`` where each ``P`` is one of

- ``{"name": str, "type": "float", "low": float, "high": float, "log": bool}``
- ``{"name": str, "type": "int", "low": int, "high": int, "log": bool}``
- ``{"name": str, "type": "categorical", "choices": [str | int | float | bool, ...]}``
- ``{"name": str, "type": "simplex", "domains": [str, ...]}``: data-mix
  weights; its value in a config is ``{domain: weight}`` with weights >= 0
  that sum to one.

A config is ``{name: value}`` for every parameter. The unit-cube encoding
maps a config to ``dims(space)`` coordinates in [0, 1]: one per float, int
or categorical parameter, and one per domain of a simplex block.
"""

from __future__ import annotations

import math
from typing import Any

JSONConfig = dict[str, Any]
JSONSpace = dict[str, Any]


def params(space: JSONSpace) -> list[dict[str, Any]]:
    """The parameter descriptions of ``space``, in order."""
    return list(space["params"])


def names(space: JSONSpace) -> list[str]:
    """The parameter names of ``space``, in order."""
    return [p["name"] for p in space["params"]]


def coord_names(space: JSONSpace) -> list[str]:
    """One label per unit coordinate: the parameter name, or ``block.domain``."""
    out: list[str] = []
    for p in space["params"]:
        if p["type"] == "simplex":
            out.extend(p["name"] + "." + d for d in p["domains"])
        else:
            out.append(p["name"])
    return out


def coord_owner(space: JSONSpace) -> list[str]:
    """For each unit coordinate, the name of the parameter that owns it."""
    out: list[str] = []
    for p in space["params"]:
        width = len(p["domains"]) if p["type"] == "simplex" else 1
        out.extend([p["name"]] * width)
    return out


def dims(space: JSONSpace) -> int:
    """How many unit coordinates ``space`` encodes to."""
    return len(coord_names(space))


def _clip01(u: float) -> float:
    if u != u:  # NaN
        return 0.5
    return min(1.0, max(0.0, float(u)))


def _encode_number(p: dict[str, Any], value: float) -> float:
    low, high = float(p["low"]), float(p["high"])
    if p.get("log"):
        span = math.log(high) - math.log(low)
        return 0.5 if span == 0.0 else _clip01((math.log(value) - math.log(low)) / span)
    return 0.5 if high == low else _clip01((float(value) - low) / (high - low))


def _decode_number(p: dict[str, Any], u: float) -> float:
    low, high = float(p["low"]), float(p["high"])
    u = _clip01(u)
    if p.get("log"):
        x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        x = low + u * (high - low)
    return min(high, max(low, x))


def _encode_param(p: dict[str, Any], value: Any) -> list[float]:
    kind = p["type"]
    if kind in ("float", "int"):
        return [_encode_number(p, value)]
    if kind == "categorical":
        k = len(p["choices"])
        return [(p["choices"].index(value) + 0.5) / k]
    weights = [float(value[d]) for d in p["domains"]]
    top = max(weights) if weights else 0.0
    return [_clip01(w / top) if top > 0 else 1.0 for w in weights]


def _decode_param(p: dict[str, Any], coords: list[float]) -> Any:
    kind = p["type"]
    if kind == "float":
        return _decode_number(p, coords[0])
    if kind == "int":
        x = _decode_number(p, coords[0])
        return int(min(int(p["high"]), max(int(p["low"]), round(x))))
    if kind == "categorical":
        k = len(p["choices"])
        return p["choices"][min(k - 1, int(_clip01(coords[0]) * k))]
    return normalise(p["domains"], coords)


def normalise(domains: list[str], raw: list[float]) -> dict[str, float]:
    """Weights over ``domains`` from non-negative raw values, summing to one.

    Negative or NaN values count as zero; all zeros give the uniform mix.
    """
    clean = [max(0.0, float(x)) if x == x else 0.0 for x in raw]
    total = math.fsum(clean)
    if total <= 0.0:
        return {d: 1.0 / len(domains) for d in domains}
    weights = [x / total for x in clean]
    # Put the rounding remainder on the largest weight so the sum is exact.
    rest = 1.0 - math.fsum(weights)
    i = max(range(len(weights)), key=lambda j: weights[j])
    weights[i] = max(0.0, weights[i] + rest)
    return dict(zip(domains, weights, strict=True))


def encode(space: JSONSpace, config: JSONConfig) -> list[float]:
    """Map a valid ``config`` to unit coordinates (see the module doc)."""
    out: list[float] = []
    for p in space["params"]:
        out.extend(_encode_param(p, config[p["name"]]))
    return out


def decode(space: JSONSpace, vector: list[float]) -> JSONConfig:
    """Map any ``dims(space)`` numbers to a valid config; values are clipped to [0, 1] first."""
    if len(vector) != dims(space):
        raise ValueError(f"decode: expected {dims(space)} coordinates, got {len(vector)}")
    out: JSONConfig = {}
    i = 0
    for p in space["params"]:
        width = len(p["domains"]) if p["type"] == "simplex" else 1
        out[p["name"]] = _decode_param(p, [float(x) for x in vector[i : i + width]])
        i += width
    return out


def repair(space: JSONSpace, config: JSONConfig) -> JSONConfig:
    """The nearest valid config: clip numbers, round ints, renormalise simplex blocks.

    Unknown keys are dropped; missing parameters and unknown categorical values
    raise ``ValueError`` (there is no nearest value to repair them to).
    """
    out: JSONConfig = {}
    for p in space["params"]:
        name = p["name"]
        if name not in config:
            raise ValueError(f"repair: parameter {name!r} is missing")
        value = config[name]
        kind = p["type"]
        if kind == "categorical":
            if value not in p["choices"]:
                raise ValueError(f"repair: {name}={value!r} is not one of {p['choices']!r}")
            out[name] = value
        elif kind == "simplex":
            if not isinstance(value, dict):
                raise ValueError(f"repair: {name} must be a mapping of domain to weight")
            out[name] = normalise(p["domains"], [float(value.get(d, 0.0)) for d in p["domains"]])
        else:
            x = float(value)
            if x != x:
                raise ValueError(f"repair: {name} is NaN")
            x = min(float(p["high"]), max(float(p["low"]), x))
            out[name] = int(round(x)) if kind == "int" else x
    return out


def distance(space: JSONSpace, a: JSONConfig, b: JSONConfig) -> float:
    """Euclidean distance between two configs in the unit cube."""
    return math.sqrt(math.fsum((x - y) ** 2 for x, y in zip(encode(space, a), encode(space, b), strict=True)))


def key(space: JSONSpace, config: JSONConfig, digits: int = 6) -> str:
    """A canonical string for ``config`` (unit coordinates rounded), for de-duplication."""
    return ",".join(str(round(u, digits)) for u in encode(space, config))
