"""Panels: a deterministic split of a benchmark's instances and seeds into disjoint panels.

- ``search``: the outer loop and the LLM may read its traces;
- ``validation``: its only output is verdicts (and ``stage1`` is drawn from it);
- ``confirmation``: one fresh panel per generation (``Panels.confirmation(g)``), on which a
  generation's winner must clear the promotion threshold again before it is kept; drawn from a pool
  of instances no other panel uses, a new slice of it for every generation (once the pool is used
  up, its instances again with seeds no earlier generation used), seeds 30_000..;
- ``test``: sealed, used only for reports and replay, never for a decision.

``split = "instance"`` (the default) spreads every panel over the groups;
``split = "group"`` deals whole groups: the search panel gets the first
``ceil(groups / 3)`` groups (by hash) and validation, confirmation and test
come only from the other groups, so a keep means the mechanism transfers to
groups the search never showed.

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
SEED_BASE = {"search": 0, "validation": 10_000, "test": 20_000, "confirmation": 30_000}
SPLITS = ("instance", "group")
MIN_CONFIRMATION_PAIRS = 4  # fewer pairs cannot make a confirmation interval worth the name
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
    """The panels. Built by :func:`split_panels`; stored in the manifest via ``to_json``.

    ``confirmation_pool`` holds (instance key, group) of the instances no other panel uses, in the
    order generations draw them; ``confirmation(g)`` is generation g's slice with its own seeds."""

    search: tuple[PanelEntry, ...]
    validation: tuple[PanelEntry, ...]
    test: tuple[PanelEntry, ...]
    confirmation_pool: tuple[tuple[str, str], ...] = ()
    confirmation_instances: int = 0
    seeds_per_instance: int = 1
    salt: str = ""
    split: str = "instance"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {name: [e.to_json() for e in getattr(self, name)] for name in PANEL_NAMES}
        d["confirmation"] = {"pool": [list(p) for p in self.confirmation_pool],
                             "instances": self.confirmation_instances, "seeds": self.seeds_per_instance,
                             "salt": self.salt}
        d["split"] = self.split
        return d

    @classmethod
    def from_json(cls, d: Any) -> Panels:
        """Records written before confirmation panels existed read with none (and split "instance")."""
        if not isinstance(d, dict) or any(not isinstance(d.get(n), list) for n in PANEL_NAMES):
            raise JudgeError(f"panels must be a dict with lists {list(PANEL_NAMES)}")
        parts = {n: tuple(PanelEntry.from_json(e) for e in d[n]) for n in PANEL_NAMES}
        conf = d.get("confirmation") or {}
        pool = tuple((str(k), str(g)) for k, g in conf.get("pool", []))
        return cls(parts["search"], parts["validation"], parts["test"], pool, int(conf.get("instances", 0)),
                   int(conf.get("seeds", 1)), str(conf.get("salt", "")), str(d.get("split", "instance")))

    def stage1(self, n: int) -> tuple[PanelEntry, ...]:
        """The cheap first stage of the cascade: ``n`` validation entries, spread round-robin over
        the groups (different instances before second seeds), deterministic. Called by the judge
        before it runs a candidate on the full validation panel. All entries if ``n`` exceeds them."""
        if n < 1:
            raise JudgeError(f"stage 1 needs at least one pair, got n={n}")
        return tuple(_spread_entries(self.validation)[:n])

    @property
    def fresh_generations(self) -> int:
        """How many generations get confirmation instances no earlier generation used (0: off)."""
        if self.confirmation_instances < 1:
            return 0
        return len(self.confirmation_pool) // self.confirmation_instances

    def confirmation(self, generation: int) -> tuple[PanelEntry, ...]:
        """Generation ``generation``'s confirmation panel: the next ``confirmation_instances`` pool
        instances (fresh while the pool lasts, then the pool again from its start) with seeds from
        30_000.. that no earlier generation used on that instance, so every generation's pairs are new.
        Called by the judge once a generation has a winner. Empty when confirmation is off."""
        n, pool = self.confirmation_instances, self.confirmation_pool
        if n < 1:
            return ()
        if generation < 0:
            raise JudgeError(f"generation must be >= 0, got {generation}")
        start = generation * n
        entries: list[PanelEntry] = []
        for pos in range(start, start + n):
            key, group = pool[pos % len(pool)]
            visit = pos // len(pool)  # how many earlier generations drew this instance
            first = _hash(self.salt, "seed", "confirmation", key) % SEED_SPAN
            for k in range(self.seeds_per_instance):
                offset = (first + visit * self.seeds_per_instance + k) % SEED_SPAN
                entries.append(PanelEntry(key, group, SEED_BASE["confirmation"] + offset))
        return tuple(entries)


@dataclass(frozen=True)
class PanelSpec:
    """How many instances each panel gets, how many seeds per instance, the hash salt, the split
    (``"instance"`` or ``"group"``) and the instances of each generation's confirmation panel (-1: auto,
    up to 12 of the unused instances, off when they give fewer than 4 pairs; 0: off)."""

    search_instances: int = 6
    validation_instances: int = 12
    test_instances: int = 12
    seeds_per_instance: int = 2
    salt: str = "bilevel-v1"
    confirmation_instances: int = 0
    split: str = "instance"

    def sizes(self) -> dict[str, int]:
        return {"search": self.search_instances, "validation": self.validation_instances,
                "test": self.test_instances}

    def check(self) -> None:
        """JudgeError if the sizes cannot make a split (naming the [panels] key to change)."""
        for name, size in self.sizes().items():
            if size < 0:
                raise JudgeError(f"[panels] {name}_instances must be >= 0, got {size}")
        if self.validation_instances < 1:
            raise JudgeError("[panels] validation_instances must be >= 1: verdicts need a validation panel")
        if not 1 <= self.seeds_per_instance <= SEED_SPAN:
            raise JudgeError(f"[panels] seeds_per_instance must be in 1..{SEED_SPAN}, got {self.seeds_per_instance}")
        if self.split not in SPLITS:
            raise JudgeError(f'[panels] split must be "instance" or "group", got {self.split!r}')
        pairs = self.confirmation_instances * self.seeds_per_instance
        if self.confirmation_instances < -1 or 0 < pairs < MIN_CONFIRMATION_PAIRS:
            raise JudgeError(
                f"a confirmation panel of {pairs} pairs is too small for a confirmation stage (at least "
                f"{MIN_CONFIRMATION_PAIRS} needed): raise [panels] confirmation_instances (now "
                f"{self.confirmation_instances}) or seeds_per_instance (now {self.seeds_per_instance}), or set "
                "confirmation_instances = -1 (auto) or 0 (off)")


AUTO_CONFIRMATION = 12  # instances per confirmation panel when [panels] confirmation_instances = -1 (auto)


def split_panels(instances: list[Instance], spec: PanelSpec) -> Panels:
    """Split ``instances`` into disjoint search, validation, test and confirmation panels (see module
    docstring). Called once when a run starts (and again when it resumes); the result goes into
    the manifest. JudgeError, naming the [panels] keys to change, when a panel cannot be made."""
    spec.check()
    _check_instances(instances, spec)
    if spec.split == "group":
        chosen, spare = _group_split(instances, spec)
    else:
        chosen, spare = _holdout_split(instances, spec) or _plain_split(instances, spec)
    for name in PANEL_NAMES:
        if spec.sizes()[name] > 0 and not chosen[name]:
            raise JudgeError(f"the {spec.split} split left the {name} panel empty: lower [panels] "
                             f"{name}_instances or set [panels] split = \"instance\"")
    parts = {name: _with_seeds(name, chosen[name], spec) for name in PANEL_NAMES}
    pool = tuple((i.key, i.group) for i in _spread(spare, spec.salt + "/confirmation"))
    return Panels(parts["search"], parts["validation"], parts["test"], pool, _confirmation_size(spec, len(pool)),
                  spec.seeds_per_instance, spec.salt, spec.split)


def _confirmation_size(spec: PanelSpec, available: int) -> int:
    """Instances per confirmation panel: the asked number (refused if the unused instances cannot give
    it), or with -1 (auto) up to ``AUTO_CONFIRMATION`` of them, 0 (off) if that gives too few pairs."""
    n = spec.confirmation_instances
    if n < 0:
        n = min(AUTO_CONFIRMATION, available)
        return n if n * spec.seeds_per_instance >= MIN_CONFIRMATION_PAIRS else 0
    if n > available:
        raise JudgeError(
            f"too few unused instances for a confirmation panel: {available} left after the other panels, "
            f"{n} asked; lower [panels] confirmation_instances, shrink the other panels (search_instances, "
            "validation_instances, test_instances), or set [panels] confirmation_instances = -1 (auto) or 0 (off)")
    return n


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


Chosen = tuple[dict[str, list[Instance]], list[Instance]]  # the panels' instances, and the spare ones


def _plain_split(instances: Sequence[Instance], spec: PanelSpec) -> Chosen:
    """One round-robin order over groups, dealt in slices: each panel spreads over groups; the rest
    are spare (the confirmation pool)."""
    order = _spread(instances, spec.salt)
    out: dict[str, list[Instance]] = {}
    start = 0
    for name in _DEAL_ORDER:
        size = spec.sizes()[name]
        out[name] = order[start:start + size]
        start += size
    return out, order[start:]


def _holdout_split(instances: Sequence[Instance], spec: PanelSpec) -> Chosen | None:
    """Deal whole holdout families to the panels, then spread each panel within its families.
    None when some instance has no family, or the families cannot fill the requested sizes.
    The spare instances (the confirmation pool) come from the validation and search families only,
    so no confirmation instance shares a family with the test panel."""
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
    spread = {n: _spread(pools[n], spec.salt) for n in PANEL_NAMES}
    spare = [i for n in ("validation", "search") for i in spread[n][sizes[n]:]]
    return {n: spread[n][:sizes[n]] for n in PANEL_NAMES}, spare


def search_groups(groups: Sequence[str], salt: str) -> list[str]:
    """The groups a ``"group"`` split gives the search panel: the first ceil(k / 3) of the k groups by
    hash (at least 1, and always leaving at least one group for the other panels)."""
    order = sorted(set(groups), key=lambda g: (_hash(salt, "split-group", g), g))
    return order[:max(1, min(len(order) - 1, -(-len(order) // 3)))]


def _group_split(instances: Sequence[Instance], spec: PanelSpec) -> Chosen:
    """Whole groups: the search panel from ``search_groups``, every other panel from the rest."""
    groups = sorted({i.group for i in instances})
    if len(groups) < 2:
        raise JudgeError(f'split = "group" needs at least 2 instance groups; the benchmark has {len(groups)} '
                         f'({groups}): set [panels] split = "instance"')
    mine = set(search_groups(groups, spec.salt))
    seen = [i for i in instances if i.group in mine]
    unseen = [i for i in instances if i.group not in mine]
    rest = PanelSpec(0, spec.validation_instances, spec.test_instances, spec.seeds_per_instance, spec.salt)
    needed = spec.validation_instances + spec.test_instances
    if len(unseen) < needed or len(seen) < spec.search_instances:
        raise JudgeError(
            f'the "group" split leaves {len(seen)} instances in the search groups {sorted(mine)} and {len(unseen)} '
            f"in the other groups; the panels need {spec.search_instances} and {needed}: lower [panels] "
            'search_instances, validation_instances or test_instances, or set [panels] split = "instance"')
    chosen, spare = _holdout_split(unseen, rest) or _plain_split(unseen, rest)
    chosen["search"] = _spread(seen, spec.salt)[:spec.search_instances]
    return chosen, spare


def _with_seeds(panel: str, chosen: Sequence[Instance], spec: PanelSpec, tag: str = "") -> tuple[PanelEntry, ...]:
    """``seeds_per_instance`` distinct seeds per instance, from the panel's own seed range (``tag``
    names the hash stream: the panel, or a generation's confirmation panel)."""
    base = SEED_BASE[panel]
    entries: list[PanelEntry] = []
    for inst in chosen:
        used: set[int] = set()
        for k in range(spec.seeds_per_instance):
            offset = _hash(spec.salt, "seed", tag or panel, inst.key, str(k)) % SEED_SPAN
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
