"""The offline author: no model; recombines and mutates real mechanism source.

It is the default where no model is reachable and the blind baseline for the
LLM author in studies. Operations, each producing real source or a real stack:

- ``add``: put a library mechanism (built-in or kept earlier) on the stack;
- ``mutate``: change the tunables of a mechanism on the stack (its source is edited);
- ``swap``: change the order of two mechanisms (hook order);
- ``drop``: remove a mechanism from the stack;
- ``pair``: add two library mechanisms at once (composition);

and structural operators on the restricted source's syntax tree (``outer.graft``, ``outer.mutate``):

- ``graft``: a hook of another mechanism (with its observe) grafted into one on the stack;
- ``cross``: a mechanism whose hooks come from two parents, some from each;
- ``block``: an early-return guard block copied from another mechanism's hook;
- ``point``: one comparison, operator, boolean or number inside a function replaced;
- ``guard``: a new guard (warm-up, thin-out, coin, late stop) at the top of a hook;
- ``screen``: a mechanism's proposals screened by a quadratic surrogate of the history.

Every candidate is vetted before it is offered: new sources compiled and
conformance-checked (a short check; the outer loop runs the full one), then
the stack is run on fixed probe problems (``outer.probe``) and dropped when it
faults there or behaves exactly like the incumbent or a candidate already
made (identical proposals = one candidate). A new mechanism that changes no
trial on the probes (the judge would reject it as inactive: a proposer
placed after one that always proposes, say) is moved: the author tries the
other orders of the new mechanisms, at the end and at the front of the
stack, and drops the candidate when none makes every new mechanism act. All choices come from a random
source seeded by the run's seed and the generation: the author is blind,
seeded and replayable. ``Candidate.operator`` names the operator.

The trace analysis steers which library mechanism is tried first (tabu for
repeated proposals, restarts and trust regions for plateaus, the bandit for
parameters never moved, a design for runs that rarely improve).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from bilevel.judge.conformance import check_conformance
from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.outer.graft import Part, compose, hooks_of, wrap_in_screen
from bilevel.outer.mutate import graft_block, insert_guard, mutate_constants, mutate_point
from bilevel.outer.probe import ProbeResult, probe
from bilevel.outer.traces import TraceReport
from bilevel.sandbox import compile_mechanism

VET_EXAMPLES = 4  # the author's short conformance check of a new source

CUES: tuple[tuple[str, Callable[[TraceReport], float]], ...] = (
    ("tabu", lambda a: a.repeated_share * 4),
    ("restart_plateau", lambda a: a.plateau_share),
    ("trust_region", lambda a: a.plateau_share * 0.8 + a.kept_share),
    ("ucb_bandit", lambda a: 0.5 if a.never_moved else 0.1),
    ("lhs_design", lambda a: 0.4 if a.kept_share < 0.1 else 0.1),
    ("elite_crossover", lambda a: 0.3),
    ("quad_surrogate", lambda a: 0.3 + a.plateau_share * 0.5),
    ("one_plus_one_es", lambda a: 0.3 + a.kept_share),
    ("cma_rank_one", lambda a: 0.3 + a.kept_share),
    ("coord_step", lambda a: 0.4 if a.never_moved else 0.25),
    ("halton_design", lambda a: 0.4 if a.kept_share < 0.1 else 0.1),
    # Acts only on a data mix (a simplex block); the author does not see the space, so it is tried rarely.
    ("simplex_thompson", lambda a: 0.05),
)


def _placements(stack: Stack, new_ids: set[str]) -> list[Stack]:
    """``stack`` and the other orders worth trying for its new mechanisms: the new ones reversed at the
    end, then at the front in both orders (each stack once, the given one first)."""
    old = [m for m in stack.mechanisms if m.id not in new_ids]
    new = [m for m in stack.mechanisms if m.id in new_ids]
    orders = [list(stack.mechanisms), old + new[::-1], new + old, new[::-1] + old]
    out: list[Stack] = []
    for mechs in orders:
        candidate = Stack(tuple(mechs), stack.search)
        if candidate.key not in {s.key for s in out}:
            out.append(candidate)
    return out


def _cue(name: str, analysis: TraceReport) -> float:
    base = name.split("'")[0]
    return next((f(analysis) for n, f in CUES if n == base), 0.2)


class OfflineAuthor:
    """Seeded, model-free author. ``propose`` is called once per generation."""

    name = "offline"

    def __init__(self, structural: bool = True) -> None:
        self.structural = structural  # False: only the five recombination operators (add, mutate, pair, drop, swap)
        self._probed: dict[str, ProbeResult | None] = {}  # stack key -> probe result (a pure function: a cache)
        self._vetted: dict[str, bool] = {}  # mechanism id -> compiled and passed the short conformance check

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]:
        rng = random.Random(f"offline:{ctx.seed}:{ctx.generation}")
        out: list[Candidate] = []
        seen = set(ctx.tried) | {ctx.incumbent.key}
        behaviours = {self.behaviour_of(ctx.incumbent)}
        makers = self._makers(ctx, rng)
        attempts = 0
        while len(out) < n and attempts < 8 * max(1, n):
            attempts += 1
            name, make, _ = rng.choices(makers, weights=[w for _, _, w in makers])[0]
            made = make()
            if made is None or made.stack.key in seen:
                continue
            seen.add(made.stack.key)
            if not all(self.vetted(m) for m in made.new):
                continue
            placed = self._active_placement(made, seen)
            if placed is None:
                continue  # faults on the probes, or a new mechanism acts in no order
            made, fingerprint = placed
            if fingerprint in behaviours:
                continue  # behaves exactly like the incumbent or an earlier candidate
            behaviours.add(fingerprint)
            out.append(replace(made, operator=name, behaviour=fingerprint))
        return out

    def probed(self, stack: Stack) -> ProbeResult | None:
        """The stack's probe result (``outer.probe.probe``), computed once per stack."""
        if stack.key not in self._probed:
            self._probed[stack.key] = probe(stack)
        return self._probed[stack.key]

    def behaviour_of(self, stack: Stack) -> str | None:
        """The stack's behavioural fingerprint on the probes (None: a hook faulted there)."""
        result = self.probed(stack)
        return None if result is None else result.fingerprint

    def _active_placement(self, made: Candidate, seen: set[str]) -> tuple[Candidate, str] | None:
        """``made``, or the first other order of its new mechanisms (reversed at the end, then at the front)
        in which every new mechanism changes some probe trial; with its fingerprint. None when a hook
        faults on the probes or no order makes every new mechanism act."""
        new_ids = {m.id for m in made.new}
        for i, stack in enumerate(_placements(made.stack, new_ids)):
            if i and stack.key in seen:
                continue
            seen.add(stack.key)
            result = self.probed(stack)
            if result is None:
                return None
            if new_ids.isdisjoint(result.inert):
                if i == 0:
                    return made, result.fingerprint
                order = " > ".join(m.name for m in stack.mechanisms)
                return replace(made, stack=stack, operation=f"{made.operation} (placed {order}: in the "
                               "operator's order a new mechanism changed no probe trial)"), result.fingerprint
        return None

    def vetted(self, mech: Mechanism) -> bool:
        """Whether a new source compiles and passes a short conformance check."""
        if mech.id not in self._vetted:
            ok = compile_mechanism(mech.source).ok
            self._vetted[mech.id] = ok and check_conformance(mech.source, max_examples=VET_EXAMPLES).ok
        return self._vetted[mech.id]

    def _makers(self, ctx: AuthorContext, rng: random.Random,
                ) -> list[tuple[str, Callable[[], Candidate | None], float]]:
        size = len(ctx.incumbent.mechanisms)
        on = 1.0 if self.structural else 0.0
        return [
            ("add", lambda: self._add(ctx, rng), 3.0),
            ("mutate", lambda: self._mutate(ctx, rng), 2.0 if size else 0.5),
            ("pair", lambda: self._pair(ctx, rng), 1.0),
            ("drop", lambda: self._drop(ctx, rng), 0.7 if size else 0.0),
            ("swap", lambda: self._swap(ctx, rng), 0.7 if size > 1 else 0.0),
            ("graft", lambda: self._graft(ctx, rng), 1.0 * on),
            ("cross", lambda: self._cross(ctx, rng), 0.8 * on),
            ("block", lambda: self._edit(ctx, rng, "block"), 0.5 * on),
            ("point", lambda: self._edit(ctx, rng, "point"), 0.8 * on),
            ("guard", lambda: self._edit(ctx, rng, "guard"), 0.6 * on),
            ("screen", lambda: self._edit(ctx, rng, "screen"), 0.8 * on),
        ]

    # -- operations ----------------------------------------------------------
    def _unused(self, ctx: AuthorContext) -> list[Mechanism]:
        used = set(ctx.incumbent.mechanism_ids)
        return [m for m in ctx.library if m.id not in used]

    def _pick_cued(self, ctx: AuthorContext, rng: random.Random, pool: list[Mechanism]) -> Mechanism:
        weights = [0.05 + _cue(m.name, ctx.analysis) for m in pool]
        return rng.choices(pool, weights=weights)[0]

    def _add(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        pool = self._unused(ctx)
        if not pool:
            return None
        mech = self._pick_cued(ctx, rng, pool)
        stack = Stack((*ctx.incumbent.mechanisms, mech), ctx.incumbent.search)
        return Candidate(stack, f"add {mech.name}", self.name, (mech,))

    def _pair(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        pool = self._unused(ctx)
        if len(pool) < 2:
            return None
        first = self._pick_cued(ctx, rng, pool)
        second = self._pick_cued(ctx, rng, [m for m in pool if m.id != first.id])
        stack = Stack((*ctx.incumbent.mechanisms, first, second), ctx.incumbent.search)
        return Candidate(stack, f"add {first.name} and {second.name}", self.name, (first, second))

    def _mutate(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        mechs = list(ctx.incumbent.mechanisms)
        if mechs:
            i = rng.randrange(len(mechs))
            target = mechs[i]
        else:
            pool = list(ctx.library)
            if not pool:
                return None
            i, target = 0, self._pick_cued(ctx, rng, pool)
            mechs = [target]
        changed = mutate_constants(target.source, rng, count=rng.choice((1, 1, 2)))
        if changed is None:
            return None
        source, changes = changed
        base = target.name.split("'")[0]
        mutant = Mechanism(f"{base}'{Mechanism(base, source).id[:6]}", source)
        mechs[i] = mutant
        stack = Stack(tuple(mechs), ctx.incumbent.search)
        return Candidate(stack, f"mutate {target.name}: {', '.join(changes)}", self.name, (mutant,), (target.id,))

    def _drop(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        mechs = list(ctx.incumbent.mechanisms)
        if not mechs:
            return None
        gone = mechs.pop(rng.randrange(len(mechs)))
        return Candidate(Stack(tuple(mechs), ctx.incumbent.search), f"drop {gone.name}", self.name)

    def _swap(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        mechs = list(ctx.incumbent.mechanisms)
        if len(mechs) < 2:
            return None
        i, j = sorted(rng.sample(range(len(mechs)), 2))
        mechs[i], mechs[j] = mechs[j], mechs[i]
        return Candidate(Stack(tuple(mechs), ctx.incumbent.search),
                         f"swap {mechs[j].name} and {mechs[i].name}", self.name)

    # -- structural operators -------------------------------------------------
    def _target(self, ctx: AuthorContext, rng: random.Random, pool: list[Mechanism] | None = None,
                ) -> tuple[int | None, Mechanism] | None:
        """A mechanism to change: one on the stack (its index), or a library one to add (index None)."""
        mechs = list(ctx.incumbent.mechanisms) if pool is None else pool
        if mechs and rng.random() < 0.75:
            i = rng.randrange(len(mechs))
            return i, mechs[i]
        lib = list(ctx.library)
        return (None, self._pick_cued(ctx, rng, lib)) if lib else None

    def _placed(self, ctx: AuthorContext, index: int | None, mutant: Mechanism) -> Stack:
        mechs = list(ctx.incumbent.mechanisms)
        if index is None:
            mechs.append(mutant)
        else:
            mechs[index] = mutant
        return Stack(tuple(mechs), ctx.incumbent.search)

    @staticmethod
    def _named(base: str, source: str) -> Mechanism:
        return Mechanism(f"{base}'{Mechanism(base, source).id[:6]}", source)

    def _donor(self, ctx: AuthorContext, rng: random.Random, target: Mechanism) -> Mechanism | None:
        pool = [m for m in ctx.library if m.id != target.id]
        return self._pick_cued(ctx, rng, pool) if pool else None

    def _graft(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        picked = self._target(ctx, rng)
        if picked is None:
            return None
        index, target = picked
        donor = self._donor(ctx, rng, target)
        if donor is None:
            return None
        hooks = [h for h in hooks_of(donor.source) if h != "observe"]
        if not hooks:
            return None
        hook = rng.choice(hooks)
        source = compose([Part(target.source, hooks_of(target.source)), Part(donor.source, (hook,))],
                         f"{target.name} with the {hook} of {donor.name} grafted in")
        if source is None:
            return None
        mutant = self._named(f"{target.name.split(chr(39))[0]}+{hook}", source)
        return Candidate(self._placed(ctx, index, mutant), f"graft {hook} of {donor.name} into {target.name}",
                         self.name, (mutant,), (target.id, donor.id))

    def _cross(self, ctx: AuthorContext, rng: random.Random) -> Candidate | None:
        picked = self._target(ctx, rng)
        if picked is None:
            return None
        index, a = picked
        b = self._donor(ctx, rng, a)
        if b is None:
            return None
        ha, hb = hooks_of(a.source), hooks_of(b.source)
        union = [h for h in ("guide", "propose", "review") if h in ha or h in hb]
        take_a = [h for h in union if h in ha and (h not in hb or rng.random() < 0.5)]
        take_b = [h for h in union if h in hb and h not in take_a]
        if not take_a or not take_b:
            return None
        source = compose([Part(a.source, tuple(take_a)), Part(b.source, tuple(take_b))],
                         f"{a.name} x {b.name}: {', '.join(take_a)} from {a.name}, {', '.join(take_b)} from {b.name}")
        if source is None:
            return None
        child = self._named(f"{a.name.split(chr(39))[0]}x{b.name.split(chr(39))[0]}", source)
        return Candidate(self._placed(ctx, index, child),
                         f"cross {a.name} ({', '.join(take_a)}) x {b.name} ({', '.join(take_b)})",
                         self.name, (child,), (a.id, b.id))

    def _edit(self, ctx: AuthorContext, rng: random.Random, kind: str) -> Candidate | None:
        picked = self._target(ctx, rng)
        if picked is None:
            return None
        index, target = picked
        parents: tuple[str, ...] = (target.id,)
        if kind == "block":
            donor = self._donor(ctx, rng, target)
            if donor is None:
                return None
            made = graft_block(target.source, donor.source, rng)
            parents = (target.id, donor.id)
            if made is not None:
                made = (made[0], f"{made[1]} (from {donor.name})")
        elif kind == "point":
            made = mutate_point(target.source, rng)
        elif kind == "guard":
            made = insert_guard(target.source, rng)
        else:
            wrapped = wrap_in_screen(target.source)
            made = None if wrapped is None else (wrapped, "screen propose with a quadratic surrogate")
        if made is None:
            return None
        source, change = made
        mutant = self._named(target.name.split("'")[0], source)
        return Candidate(self._placed(ctx, index, mutant), f"{kind} {target.name}: {change}", self.name,
                         (mutant,), parents)
