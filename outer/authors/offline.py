"""The offline author: no model; recombines and mutates real mechanism source.

It is the default where no model is reachable and the blind baseline for the
LLM author in studies. Operations, each producing real source or a real stack:

- ``add``: put a library mechanism (built-in or kept earlier) on the stack;
- ``mutate``: change the tunables of a mechanism on the stack (its source is edited);
- ``swap``: change the order of two mechanisms (hook order);
- ``drop``: remove a mechanism from the stack;
- ``pair``: add two library mechanisms at once (composition).

The trace analysis steers which library mechanism is tried first (tabu for
repeated proposals, restarts and trust regions for plateaus, the bandit for
parameters never moved, a design for runs that rarely improve).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from bilevel.judge.stack import Mechanism, Stack
from bilevel.outer.authors.base import AuthorContext, Candidate
from bilevel.outer.mutate import mutate_constants
from bilevel.outer.traces import TraceReport

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


def _cue(name: str, analysis: TraceReport) -> float:
    base = name.split("'")[0]
    return next((f(analysis) for n, f in CUES if n == base), 0.2)


class OfflineAuthor:
    """Seeded, model-free author. ``propose`` is called once per generation."""

    name = "offline"

    def propose(self, ctx: AuthorContext, n: int) -> list[Candidate]:
        rng = random.Random(f"offline:{ctx.seed}:{ctx.generation}")
        out: list[Candidate] = []
        seen = set(ctx.tried) | {ctx.incumbent.key}
        makers = self._makers(ctx, rng)
        attempts = 0
        while len(out) < n and attempts < 20 * max(1, n):
            attempts += 1
            made = rng.choices(makers, weights=[w for _, w in makers])[0][0]()
            if made is not None and made.stack.key not in seen:
                seen.add(made.stack.key)
                out.append(made)
        return out

    def _makers(self, ctx: AuthorContext, rng: random.Random) -> list[tuple[Callable[[], Candidate | None], float]]:
        size = len(ctx.incumbent.mechanisms)
        return [
            (lambda: self._add(ctx, rng), 3.0),
            (lambda: self._mutate(ctx, rng), 2.0 if size else 0.5),
            (lambda: self._pair(ctx, rng), 1.0),
            (lambda: self._drop(ctx, rng), 0.7 if size else 0.0),
            (lambda: self._swap(ctx, rng), 0.7 if size > 1 else 0.0),
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
