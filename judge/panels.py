"""Panels: a deterministic split of a benchmark's instances and seeds into three disjoint panels.

- ``search``: the outer loop and the LLM may read its traces;
- ``validation``: its only output is verdicts (and ``stage1`` is drawn from it);
- ``test``: sealed, used only for reports and replay, never for a decision.

The split is a pure function of the instance keys, groups, holdout families
and the :class:`PanelSpec` (its ``salt`` included): instances are ranked by
sha256(salt, key), each panel is spread round-robin over as many groups as
it can reach, no instance is in two panels, and each panel draws its seeds
from its own range (search 0.., validation 10_000.., test 20_000..), also
from the hash. When every instance names a ``holdout`` family (BBOB: the
instance id), the families are dealt to the panels first, so the test panel
shares no family with validation or search; if the families are too few or
too small for the requested sizes, the split falls back to instance-level
disjointness only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bilevel.judge.benchmarks.base import Instance
from bilevel.judge.errors import JudgeError

PANEL_NAMES = ("search", "validation", "test")
SEED_BASE = {"search": 0, "validation": 10_000, "test": 20_000}
SEED_SPAN = 10_000
# The order panels are dealt in: the panels that decide and report first.
_DEAL_ORDER = ("validation", "test", "search")


@dataclass(frozen=True)
class PanelEntry:
    """One (instance, seed) pair of a panel; ``instance`` is the Instance.key."""

    instance: str
    group: str
    seed: int

    @property
    def key(self) -> str:
        """The pair's id, ``"instance@seed"``, as verdict evidence names it."""
        return f"{self.instance}@{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "group": self.group, "seed": self.seed}

    @classmethod
    def from_json(cls, d: Any) -> PanelEntry:
        try:
            return cls(str(d["instance"]), str(d["group"]), int(d["seed"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeError(f"a panel entry needs instance, group and seed; got {d!r}") from exc


@dataclass(frozen=True)
class Panels:
    """The three panels. Built by :func:`split_panels`; stored in the manifest via ``to_json``."""

    search: tuple[PanelEntry, ...]
    validation: tuple[PanelEntry, ...]
    test: tuple[PanelEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {name: [e.to_json() for e in getattr(self, name)] for name in PANEL_NAMES}

    @classmethod
    def from_json(cls, d: Any) -> Panels:
        if not isinstance(d, dict) or any(not isinstance(d.get(n), list) for n in PANEL_NAMES):
            raise JudgeError(f"panels must be a dict with lists {list(PANEL_NAMES)}")
        parts = {n: tuple(PanelEntry.from_json(e) for e in d[n]) for n in PANEL_NAMES}
        return cls(parts["search"], parts["validation"], parts["test"])

    def stage1(self, n: int) -> tuple[PanelEntry, ...]:
        """The cheap first stage of the cascade: ``n`` validation entries, spread round-robin over
        the groups (different instances before second seeds), deterministic. Called by the judge
        before it runs a candidate on the full validation panel. All entries if ``n`` exceeds them."""
        if n < 1:
            raise JudgeError(f"stage 1 needs at least one pair, got n={n}")
        return tuple(_spread_entries(self.validation)[:n])


@dataclass(frozen=True)
class PanelSpec:
    """How many instances each panel gets, how many seeds per instance, and the hash salt."""

    search_instances: int = 6
    validation_instances: int = 12
    test_instances: int = 12
    seeds_per_instance: int = 2
    salt: str = "bilevel-v1"

    def sizes(self) -> dict[str, int]:
        return {"search": self.search_instances, "validation": self.validation_instances,
                "test": self.test_instances}

    def check(self) -> None:
        """JudgeError if the sizes cannot make a split."""
        for name, size in self.sizes().items():
            if size < 0:
                raise JudgeError(f"{name}_instances must be >= 0, got {size}")
        if self.validation_instances < 1:
            raise JudgeError("validation_instances must be >= 1: verdicts need a validation panel")
        if not 1 <= self.seeds_per_instance <= SEED_SPAN:
            raise JudgeError(f"seeds_per_instance must be in 1..{SEED_SPAN}, got {self.seeds_per_instance}")


def split_panels(instances: list[Instance], spec: PanelSpec) -> Panels:
    """Split ``instances`` into disjoint search, validation and test panels (see module docstring).
    Called once when a run starts; the result goes into the manifest."""
    spec.check()
    _check_instances(instances, spec)
    chosen = _holdout_split(instances, spec) or _plain_split(instances, spec)
    parts = {name: _with_seeds(name, chosen[name], spec) for name in PANEL_NAMES}
    return Panels(parts["search"], parts["validation"], parts["test"])


def _check_instances(instances: Sequence[Instance], spec: PanelSpec) -> None:
    keys = [i.key for i in instances]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise JudgeError(f"instance keys must be unique; repeated: {dupes[:5]}")
    needed = sum(spec.sizes().values())
    if len(instances) < needed:
        sizes = ", ".join(f"{k} {v}" for k, v in spec.sizes().items())
        raise JudgeError(
            f"too few instances for the panels: {len(instances)} available, {needed} needed ({sizes}); "
            "ask for smaller panels or give the benchmark more instances")


def _hash(*parts: str) -> int:
    """A stable 64-bit integer from the parts (sha256, unambiguous separator)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _spread(instances: Sequence[Instance], salt: str) -> list[Instance]:
    """Instances in round-robin order over groups: groups ranked by hash, members by hash of key."""
    groups: dict[str, list[Instance]] = {}
    for inst in sorted(instances, key=lambda i: (_hash(salt, "key", i.key), i.key)):
        groups.setdefault(inst.group, []).append(inst)
    order = sorted(groups, key=lambda g: (_hash(salt, "group", g), g))
    out: list[Instance] = []
    depth = max((len(v) for v in groups.values()), default=0)
    for r in range(depth):
        out.extend(groups[g][r] for g in order if r < len(groups[g]))
    return out


def _plain_split(instances: Sequence[Instance], spec: PanelSpec) -> dict[str, list[Instance]]:
    """One round-robin order over groups, dealt in slices: each panel spreads over groups."""
    order = _spread(instances, spec.salt)
    out: dict[str, list[Instance]] = {}
    start = 0
    for name in _DEAL_ORDER:
        size = spec.sizes()[name]
        out[name] = order[start:start + size]
        start += size
    return out


def _holdout_split(instances: Sequence[Instance], spec: PanelSpec) -> dict[str, list[Instance]] | None:
    """Deal whole holdout families to the panels, then spread each panel within its families.
    None when some instance has no family, or the families cannot fill the requested sizes."""
    if not instances or any(not i.holdout for i in instances):
        return None
    families: dict[str, list[Instance]] = {}
    for inst in instances:
        families.setdefault(inst.holdout, []).append(inst)
    sizes = spec.sizes()
    wanted = [n for n in _DEAL_ORDER if sizes[n] > 0]
    pools: dict[str, list[Instance]] = {n: [] for n in PANEL_NAMES}
    for fam in sorted(families, key=lambda f: (_hash(spec.salt, "holdout", f), f)):
        # the panel whose pool is emptiest relative to its size gets the next family
        target = min(wanted, key=lambda n: (len(pools[n]) / sizes[n], _DEAL_ORDER.index(n)))
        pools[target].extend(families[fam])
    if any(len(pools[n]) < sizes[n] for n in wanted):
        return None
    return {n: _spread(pools[n], spec.salt)[:sizes[n]] for n in PANEL_NAMES}


def _with_seeds(panel: str, chosen: Sequence[Instance], spec: PanelSpec) -> tuple[PanelEntry, ...]:
    """``seeds_per_instance`` distinct seeds per instance, from the panel's own seed range."""
    base = SEED_BASE[panel]
    entries: list[PanelEntry] = []
    for inst in chosen:
        used: set[int] = set()
        for k in range(spec.seeds_per_instance):
            offset = _hash(spec.salt, "seed", panel, inst.key, str(k)) % SEED_SPAN
            while offset in used:
                offset = (offset + 1) % SEED_SPAN
            used.add(offset)
            entries.append(PanelEntry(inst.key, inst.group, base + offset))
    return tuple(entries)


def _spread_entries(entries: Sequence[PanelEntry]) -> list[PanelEntry]:
    """Entries round-robin over groups (in order of first appearance); within a group, every
    instance's first seed before any instance's second seed."""
    seed_rank: dict[str, int] = {}
    ranked: dict[str, list[tuple[int, int, PanelEntry]]] = {}
    for pos, e in enumerate(entries):
        r = seed_rank.get(e.instance, 0)
        seed_rank[e.instance] = r + 1
        ranked.setdefault(e.group, []).append((r, pos, e))
    queues = [sorted(v, key=lambda t: (t[0], t[1])) for v in ranked.values()]
    out: list[PanelEntry] = []
    for r in range(max((len(q) for q in queues), default=0)):
        out.extend(q[r][2] for q in queues if r < len(q))
    return out
