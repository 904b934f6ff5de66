"""The keep/revert rule: paired evidence in, a :class:`Verdict` with its numbers and reason out.

``decide`` applies the checks in this order and stops at the first that fails:

1. sandbox faults: the candidate's fault rate must not exceed ``fault_tolerance``;
2. activity (when ``requires_activity``): the share of trials whose proposal a
   mechanism changed must reach ``min_changed_share``, for every new mechanism
   on its own (the least active one decides); every verdict's reason lists each
   new mechanism's share and names the one that decided;
3. veto floors: each named sub-score's candidate mean must reach its floor
   (for a sub-score whose ``subscore_directions`` entry is ``"lower"``, the
   floor is a ceiling: the mean must stay at or below it);
4. regression cap: no group's mean improvement may be below ``-regression_cap``;
4b. sub-score regression caps: for each name in ``subscore_regression_caps``,
   the mean paired change of that sub-score (candidate vs incumbent, signed so
   that positive is better by its ``subscore_directions`` entry, which must be
   given) may not be below ``-cap`` ("no domain may lose more than 0.1");
5. promotion: the lower end of the bootstrap CI of the mean paired
   improvement (incumbent - candidate, positive = candidate better) must be
   strictly above ``promotion`` (which is never negative, so a candidate that
   merely ties the incumbent is never kept).

``stage1_rejects`` is the cascade's cheap first stage: it only rejects clear
losers (CI upper end below ``-stage1_margin``) and otherwise lets the full
panel decide. The bootstrap uses seed 0, so verdicts are deterministic.

``confirm`` is the last stage: a generation's winner on the full validation
panel is the selection (the best of several candidates judged on the same
pairs, so its numbers are biased upwards); it is kept only if ``decide``
keeps it again on that generation's fresh confirmation panel. Its verdict
carries the confirmation numbers and, separately, the selection numbers.
Only one candidate per generation is ever confirmed, on pairs no earlier
decision saw, so a null candidate passes with probability at most
(1 - confidence) / 2 per generation whatever the selection did; over a
run's G generations the false-keep rate is at most G (1 - confidence) / 2
(a union bound), and ``bilevel calibrate`` measures it on the ``null`` benchmark.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from bilevel.judge.errors import JudgeError
from bilevel.judge.stats import group_means, hierarchical_bootstrap_ci

STAGES = ("stage1", "full", "confirmation")
BOOTSTRAP_SEED = 0


def _g(x: float) -> str:
    """A number for a reason: 4 significant digits."""
    return f"{x:.4g}"


@dataclass(frozen=True)
class Thresholds:
    """The judge's thresholds; part of the manifest. Checked when built."""

    promotion: float = 0.0
    regression_cap: float = 1.0
    fault_tolerance: float = 0.05
    min_changed_share: float = 0.01
    veto_floors: dict[str, float] = field(default_factory=dict)
    subscore_regression_caps: dict[str, float] = field(default_factory=dict)
    subscore_directions: dict[str, str] = field(default_factory=dict)  # name -> "higher" | "lower" (is better)
    confidence: float = 0.95
    n_boot: int = 2000
    stage1_pairs: int = 8
    stage1_margin: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (self.promotion >= 0.0, "promotion must be >= 0 (a tie must never be kept)"),
            (self.regression_cap >= 0.0, "regression_cap must be >= 0"),
            (0.0 <= self.fault_tolerance <= 1.0, "fault_tolerance must be in [0, 1]"),
            (0.0 <= self.min_changed_share <= 1.0, "min_changed_share must be in [0, 1]"),
            (0.0 < self.confidence < 1.0, "confidence must be in (0, 1)"),
            (self.n_boot >= 1, "n_boot must be >= 1"),
            (self.stage1_pairs >= 1, "stage1_pairs must be >= 1"),
            (self.stage1_margin >= 0.0, "stage1_margin must be >= 0"),
            (all(isinstance(k, str) and math.isfinite(v) for k, v in self.veto_floors.items()),
             "veto_floors must map sub-score names to finite numbers"),
            (all(isinstance(k, str) and math.isfinite(v) and v >= 0
                 for k, v in self.subscore_regression_caps.items()),
             "subscore_regression_caps must map sub-score names to finite numbers >= 0"),
            (all(v in ("higher", "lower") for v in self.subscore_directions.values()),
             'subscore_directions values must be "higher" or "lower" (which way is better)'),
            (not (missing := sorted(set(self.subscore_regression_caps) - set(self.subscore_directions))),
             f"subscore_regression_caps names {missing} without a "
             'direction: add them to subscore_directions as "higher" or "lower"'),
        ]
        numbers = [self.promotion, self.regression_cap, self.fault_tolerance, self.min_changed_share,
                   self.confidence, self.stage1_margin]
        if not all(math.isfinite(x) for x in numbers):
            raise JudgeError(f"thresholds must be finite numbers: {self.to_json()}")
        for ok, message in checks:
            if not ok:
                raise JudgeError(f"bad thresholds: {message}; got {self.to_json()}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["veto_floors"] = dict(sorted(self.veto_floors.items()))
        d["subscore_regression_caps"] = dict(sorted(self.subscore_regression_caps.items()))
        d["subscore_directions"] = dict(sorted(self.subscore_directions.items()))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Thresholds:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise JudgeError(f"unknown threshold(s) {unknown}; known: {sorted(known)}")
        kwargs = dict(d)
        if "veto_floors" in kwargs:
            kwargs["veto_floors"] = {str(k): float(v) for k, v in kwargs["veto_floors"].items()}
        if "subscore_regression_caps" in kwargs:
            kwargs["subscore_regression_caps"] = {str(k): float(v)
                                                  for k, v in kwargs["subscore_regression_caps"].items()}
        if "subscore_directions" in kwargs:
            kwargs["subscore_directions"] = {str(k): str(v) for k, v in kwargs["subscore_directions"].items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class Evidence:
    """Paired results of candidate and incumbent on the same (instance, seed) pairs.

    Scores are primary scores (lower is better). The shares are computed by the
    caller from the candidate's hook events; ``requires_activity`` is False
    when the candidate differs only in the base proposer's config (Level 1.5).
    """

    keys: tuple[str, ...]
    groups: tuple[str, ...]
    candidate: tuple[float, ...]
    incumbent: tuple[float, ...]
    candidate_subscores: dict[str, tuple[float, ...]]
    changed_share: float
    fired_share: float
    fault_rate: float
    requires_activity: bool = True
    incumbent_subscores: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # each new mechanism's own counterfactual changed share, by name in stack order (``changed_share`` is their
    # minimum); empty for a config-only candidate and for evidence recorded before shares were kept
    changed_shares: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.keys)
        if n == 0:
            raise JudgeError("evidence needs at least one pair")
        lengths = {"groups": len(self.groups), "candidate": len(self.candidate), "incumbent": len(self.incumbent)}
        lengths.update({f"subscore {k!r}": len(v) for k, v in self.candidate_subscores.items()})
        lengths.update({f"incumbent subscore {k!r}": len(v) for k, v in self.incumbent_subscores.items()})
        bad = {k: v for k, v in lengths.items() if v != n}
        if bad:
            raise JudgeError(f"evidence has {n} pairs but {bad}: every series needs one value per pair")
        if len(set(self.keys)) != n:
            raise JudgeError("evidence pairs must have distinct keys (instance@seed)")
        if not all(math.isfinite(x) for x in (*self.candidate, *self.incumbent)):
            raise JudgeError("evidence scores must be finite; a benchmark produced NaN or infinity")
        for name in ("changed_share", "fired_share", "fault_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise JudgeError(f"{name} must be a share in [0, 1], got {value}")
        for name, value in self.changed_shares.items():
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise JudgeError(f"the changed share of mechanism {name!r} must be in [0, 1], got {value}")
        if self.changed_shares and self.changed_share != min(self.changed_shares.values()):
            raise JudgeError(f"changed_share {self.changed_share} must be the least of the new mechanisms' shares "
                             f"{self.changed_shares}: the least active mechanism decides")

    @property
    def least_active(self) -> str:
        """The new mechanism whose share decides the activity check (the first of the least active); "" if none."""
        if not self.changed_shares:
            return ""
        return min(self.changed_shares, key=lambda n: self.changed_shares[n])

    @property
    def improvements(self) -> np.ndarray:
        """incumbent - candidate per pair: positive means the candidate did better."""
        return np.asarray(self.incumbent, dtype=float) - np.asarray(self.candidate, dtype=float)

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "groups": list(self.groups), "candidate": list(self.candidate),
                "incumbent": list(self.incumbent),
                "candidate_subscores": {k: list(v) for k, v in sorted(self.candidate_subscores.items())},
                "changed_share": self.changed_share, "fired_share": self.fired_share,
                "fault_rate": self.fault_rate, "requires_activity": self.requires_activity,
                "incumbent_subscores": {k: list(v) for k, v in sorted(self.incumbent_subscores.items())},
                "changed_shares": dict(self.changed_shares)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Evidence:
        return cls(tuple(d["keys"]), tuple(d["groups"]), tuple(float(x) for x in d["candidate"]),
                   tuple(float(x) for x in d["incumbent"]),
                   {k: tuple(float(x) for x in v) for k, v in d.get("candidate_subscores", {}).items()},
                   float(d["changed_share"]), float(d["fired_share"]), float(d["fault_rate"]),
                   bool(d.get("requires_activity", True)),
                   {k: tuple(float(x) for x in v) for k, v in d.get("incumbent_subscores", {}).items()},
                   {str(k): float(v) for k, v in d.get("changed_shares", {}).items()})


@dataclass(frozen=True)
class Verdict:
    """The judge's decision on one candidate, with every number it used and the manifest hash."""

    keep: bool
    stage: str
    reason: str
    mean_improvement: float
    ci_low: float
    ci_high: float
    n_pairs: int
    worst_group: str
    worst_group_improvement: float
    changed_share: float
    fired_share: float
    fault_rate: float
    manifest_hash: str
    ci_unit: str = "pair"  # what the bootstrap resampled: "group", "instance" or "pair"
    # stage "confirmation" only: the winner's numbers on the validation panel that selected it
    selection_mean: float = math.nan
    selection_low: float = math.nan
    selection_high: float = math.nan
    selection_pairs: int = 0
    # each new mechanism's counterfactual changed share (name -> share, stack order) and the one that decided
    # the activity check (the least active); empty for config-only candidates and records from before them
    changed_shares: dict[str, float] = field(default_factory=dict)
    decided_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        """Records written before ``ci_unit`` existed read as unit "pair" (what they resampled)."""
        names = [f.name for f in fields(cls)]
        nan = math.nan
        d = {"ci_unit": "pair", "selection_mean": nan, "selection_low": nan, "selection_high": nan,
             "selection_pairs": 0, "changed_shares": {}, "decided_by": "", **d}
        missing = [n for n in names if n not in d]
        if missing:
            raise JudgeError(f"a verdict record lacks {missing}")
        return cls(**{n: d[n] for n in names})


@dataclass(frozen=True)
class _Numbers:
    mean: float
    low: float
    high: float
    worst_group: str
    worst: float
    unit: str


def _numbers(evidence: Evidence, thresholds: Thresholds) -> _Numbers:
    diffs = evidence.improvements
    instances = [k.rsplit("@", 1)[0] for k in evidence.keys]  # keys are "instance@seed"
    ci = hierarchical_bootstrap_ci(diffs, evidence.groups, instances, thresholds.confidence,
                                   thresholds.n_boot, BOOTSTRAP_SEED)
    by_group = group_means(diffs, evidence.groups)
    worst_group = min(by_group, key=lambda g: (by_group[g], g))
    return _Numbers(ci.mean, ci.low, ci.high, worst_group, by_group[worst_group], ci.unit)


def _verdict(keep: bool, stage: str, reason: str, nums: _Numbers, evidence: Evidence,
             manifest_hash: str) -> Verdict:
    return Verdict(keep=keep, stage=stage, reason=reason + activation_text(evidence), mean_improvement=nums.mean, ci_low=nums.low,
                   ci_high=nums.high, n_pairs=len(evidence.keys), worst_group=nums.worst_group,
                   worst_group_improvement=nums.worst, changed_share=evidence.changed_share,
                   fired_share=evidence.fired_share, fault_rate=evidence.fault_rate,
                   manifest_hash=manifest_hash, ci_unit=nums.unit, changed_shares=dict(evidence.changed_shares),
                   decided_by=evidence.least_active)


def activation_text(ev: Evidence) -> str:
    """The tail every verdict's reason carries: each new mechanism's counterfactual changed share and, with two
    or more, the least active one, which decides the activity check ("" for a config-only candidate)."""
    if not ev.requires_activity or not ev.changed_shares:
        return ""
    shares = ", ".join(f"{name} {share:.1%}" for name, share in ev.changed_shares.items())
    if len(ev.changed_shares) == 1:
        return f"; activation (share of trials it changed, counterfactually): {shares}"
    return (f"; activation per new mechanism (share of trials each changed, counterfactually): {shares}; "
            f"the least active, {ev.least_active}, decides")


def _fault_reason(ev: Evidence, th: Thresholds) -> str | None:
    if ev.fault_rate > th.fault_tolerance:
        return (f"rejected: sandbox faults in {ev.fault_rate:.1%} of the candidate's hook calls, "
                f"over the tolerance {th.fault_tolerance:.1%}")
    return None


def _activity_reason(ev: Evidence, th: Thresholds) -> str | None:
    if not ev.requires_activity or ev.changed_share >= th.min_changed_share:
        return None
    who = "the mechanism"
    if len(ev.changed_shares) > 1:
        low = [n for n, x in ev.changed_shares.items() if x < th.min_changed_share]
        who = f"new mechanism{'s' if len(low) > 1 else ''} {', '.join(repr(n) for n in low)}"
    elif ev.changed_shares:
        who = f"the mechanism {ev.least_active!r}"
    if ev.changed_share == 0.0:
        return (f"rejected: {who} never changed a proposal (hooks fired in {ev.fired_share:.1%} "
                f"of trials, changed 0%; at least {th.min_changed_share:.1%} needed)")
    return (f"rejected: {who} changed proposals in only {ev.changed_share:.1%} of trials "
            f"(fired in {ev.fired_share:.1%}); at least {th.min_changed_share:.1%} needed")


def _veto_reason(ev: Evidence, th: Thresholds) -> str | None:
    for name, floor in sorted(th.veto_floors.items()):
        if name not in ev.candidate_subscores:
            return (f"rejected: veto floor on sub-score {name!r} cannot be checked: the evidence has no such "
                    f"sub-score (it has {sorted(ev.candidate_subscores)})")
        mean = math.fsum(ev.candidate_subscores[name]) / len(ev.candidate_subscores[name])
        if th.subscore_directions.get(name) == "lower":
            if not mean <= floor:
                return (f"rejected: veto ceiling on sub-score {name!r} (lower is better) broken: candidate mean "
                        f"{_g(mean)} > {_g(floor)}")
        elif not mean >= floor:
            return f"rejected: veto floor on sub-score {name!r} broken: candidate mean {_g(mean)} < floor {_g(floor)}"
    return None


def _subscore_cap_reason(ev: Evidence, th: Thresholds) -> str | None:
    for name, cap in sorted(th.subscore_regression_caps.items()):
        cand, inc = ev.candidate_subscores.get(name), ev.incumbent_subscores.get(name)
        if cand is None or inc is None:
            return (f"rejected: regression cap on sub-score {name!r} cannot be checked: the evidence lacks it "
                    f"for the {'candidate' if cand is None else 'incumbent'} (it has "
                    f"{sorted(ev.candidate_subscores if cand is None else ev.incumbent_subscores)})")
        sign = 1.0 if th.subscore_directions[name] == "higher" else -1.0
        change = sign * (math.fsum(cand) - math.fsum(inc)) / len(cand)  # positive: the candidate is better
        if not change >= -cap:
            return (f"rejected: sub-score {name!r} ({th.subscore_directions[name]} is better) regresses: mean "
                    f"paired change {_g(change)} < -{_g(cap)} (its regression cap)")
    return None


def _group_reason(nums: _Numbers, th: Thresholds) -> str | None:
    if nums.worst < -th.regression_cap:
        return (f"rejected: group {nums.worst_group!r} regresses: mean improvement {_g(nums.worst)} "
                f"< -{_g(th.regression_cap)} (the regression cap)")
    return None


def decide(evidence: Evidence, thresholds: Thresholds, manifest_hash: str, stage: str = "full") -> Verdict:
    """The verdict on a candidate (see the module docstring for the order of checks).
    Called once per candidate after it and the incumbent ran on the same pairs."""
    if stage not in STAGES:
        raise JudgeError(f"stage must be one of {STAGES}, got {stage!r}")
    nums = _numbers(evidence, thresholds)
    for reason in (_fault_reason(evidence, thresholds), _activity_reason(evidence, thresholds),
                   _veto_reason(evidence, thresholds), _group_reason(nums, thresholds),
                   _subscore_cap_reason(evidence, thresholds)):
        if reason is not None:
            return _verdict(False, stage, reason, nums, evidence, manifest_hash)
    n = len(evidence.keys)
    ci = f"mean improvement {_g(nums.mean)} [{_g(nums.low)}, {_g(nums.high)}] (resampling {nums.unit}s)"
    if nums.low > thresholds.promotion:
        return _verdict(True, stage, f"kept: {ci} > {_g(thresholds.promotion)} over {n} pairs",
                        nums, evidence, manifest_hash)
    reason = (f"rejected: {ci} over {n} pairs; the CI lower end does not clear the promotion "
              f"threshold {_g(thresholds.promotion)}")
    return _verdict(False, stage, reason, nums, evidence, manifest_hash)


def stage1_rejects(evidence: Evidence, thresholds: Thresholds, manifest_hash: str) -> Verdict | None:
    """The cascade's first stage: a rejecting Verdict (stage "stage1") for a clear loser, whose CI
    upper end of improvement is below ``-stage1_margin``; None to go on to the full panel.
    Called on the few pairs of ``Panels.stage1(thresholds.stage1_pairs)``."""
    nums = _numbers(evidence, thresholds)
    if nums.high < -thresholds.stage1_margin:
        reason = (f"rejected at stage 1, a clear loser: mean improvement {_g(nums.mean)} "
                  f"[{_g(nums.low)}, {_g(nums.high)}] (resampling {nums.unit}s) over {len(evidence.keys)} pairs; the CI upper end is "
                  f"below -{_g(thresholds.stage1_margin)}")
        return _verdict(False, "stage1", reason, nums, evidence, manifest_hash)
    return None


def confirm(evidence: Evidence, selection: Verdict, thresholds: Thresholds, manifest_hash: str) -> Verdict:
    """The verdict on a generation's winner (``selection``: its keeping verdict on the validation
    panel) from fresh confirmation pairs: ``decide`` again, every check and the promotion threshold,
    on the confirmation evidence, with the selection numbers recorded beside. Called once per
    generation that has a winner, before the winner replaces the incumbent."""
    if not selection.keep:
        raise JudgeError("only a candidate the validation panel kept can be confirmed")
    v = decide(evidence, thresholds, manifest_hash, stage="confirmation")
    picked = (f"selected on validation with mean improvement {_g(selection.mean_improvement)} "
              f"[{_g(selection.ci_low)}, {_g(selection.ci_high)}] over {selection.n_pairs} pairs")
    word = "confirmed" if v.keep else "not confirmed"
    reason = f"{word} on {v.n_pairs} fresh confirmation pairs: {v.reason} ({picked})"
    return replace(v, reason=reason, selection_mean=selection.mean_improvement, selection_low=selection.ci_low,
                   selection_high=selection.ci_high, selection_pairs=selection.n_pairs)
