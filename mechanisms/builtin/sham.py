"""Sham control: a mechanism that fires on every trial and changes nothing useful.

``review`` returns a copy of every candidate with the last float parameter
nudged by 1e-12 of its range towards the inside of the range (the candidate
unchanged, but still returned, when the space has no float parameter or the
nudge is lost to rounding). The host therefore records the hook as having
fired and changed the proposal, while the search is, for all practical
purposes, the one it would have been without it. It exists so that a study
can tell "a mechanism fired" apart from "a mechanism helped".

Tunables:
- NUDGE: the size of the change, as a share of the parameter's range (keep
  it negligible, or the control stops being a sham).
"""

import spacekit

NUDGE = 1e-12


def review(ctx, state, candidate):
    out = {k: v for k, v in candidate.items()}
    floats = [p for p in spacekit.params(ctx["space"]) if p["type"] == "float"]
    if not floats:
        return out
    p = floats[-1]
    x = candidate[p["name"]]
    step = NUDGE * (p["high"] - p["low"])
    if x + step <= p["high"]:
        out[p["name"]] = x + step
    else:
        out[p["name"]] = max(p["low"], x - step)
    return out
