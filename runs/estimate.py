"""What a run with a priced model will cost, estimated before anything is recorded, and the $5 refusal.

Called by ``runs.driver.check_new_run`` (``bilevel run``, ``bilevel.run``,
``ablate``, ``judge``) after the models are checked and before the store is
touched. The estimate is built from the spec and the price table, never from
fixed call counts:

- inner runs per generation: the incumbent on the search panel and on the
  validation panel, every candidate (``candidates``, plus one Level 1.5
  config) on the whole validation panel (as if none were stopped by the
  cascade's first stage), the winner and the incumbent on the confirmation
  panel; once at the end, the kept stack and the baseline on the test panel;
- proposer calls per inner run: ``ceil((budget - init_random) / proposals_per_call)``
  (the proposer answers every trial after the random start; no retries);
- author calls: ``1 + author_repairs`` per candidate (every repair used);
- prompt sizes: the real prompts, built now by the proposer and the author
  from this run's space and the built-in library (the proposer's with a full
  history), at :data:`CHARS_PER_TOKEN` characters per token; answers: a batch of
  ``proposals_per_call`` JSON proposals for this space, and the longest built-in
  mechanism with an explanation, each capped at its level's max tokens;
- Anthropic prompt caching as the backend asks for it (``outer.llm.anthropic_backend``):
  the author's prompt written once per candidate and read by its repairs; a
  system prompt long enough to be cached (:data:`MIN_CACHE_TOKENS`) read by
  every later call.

A run whose estimate leaves more than :data:`LIMIT_USD` without a dollar cap
(``[llm] inner_max_usd`` / ``author_max_usd``) is refused (:class:`CostRefused`,
exit 2) unless the user passed ``--yes``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bilevel.inner.chat import ModelRef
from bilevel.inner.llm_proposer import LLMProposer
from bilevel.inner.loop import InnerSettings
from bilevel.inner.records import Trial
from bilevel.inner.space import Space
from bilevel.judge.panels import Panels
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import BUILTIN_NAMES, load_source
from bilevel.outer.authors.brief import AuthorBrief
from bilevel.runs.llm_setup import author_model, inner_model
from bilevel.runs.spec import RunSpec, SpecError

LIMIT_USD = 5.0
CHARS_PER_TOKEN = 3.6  # measured: the default author prompt, 23-31k characters, was 6.4-8.7k tokens
MIN_CACHE_TOKENS = 1024  # the shortest prefix Anthropic caches (Sonnet, Opus)
PROSE_CHARS = 1000  # the explanation around a mechanism's source in an author answer
HYPOTHESIS = "move the most sensitive parameters by a bounded step towards the better region seen so far"


class CostRefused(SpecError):
    """The estimate is over the limit and no cap bounds it; the message says what to set."""


def tokens(text: str) -> int:
    """Estimated tokens of ``text``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class LevelCost:
    """The estimate of one level over one generation (or the final test panel): calls, tokens, dollars."""

    level: str
    calls: int
    tokens_in: int
    tokens_out: int
    cache_write: int
    cache_read: int
    usd: float

    def line(self, what: str) -> str:
        cache = (f", cache {self.cache_write:,} written / {self.cache_read:,} read"
                 if self.cache_write or self.cache_read else "")
        return (f"{self.level} {what}: {self.calls:,} calls, {self.tokens_in:,} tokens in, {self.tokens_out:,} out"
                f"{cache}, ${self.usd:.2f}")


@dataclass(frozen=True)
class Estimate:
    """A run's estimate: per generation per level, the final test panel, the basis in words."""

    model: str
    prices: tuple[float, float]
    generations: int
    inner: LevelCost
    author: LevelCost
    final: LevelCost
    basis: tuple[str, ...]

    @property
    def level_usd(self) -> dict[str, float]:
        """Dollars of the whole run per level (the test panel's proposer calls count as inner)."""
        return {"inner": self.inner.usd * self.generations + self.final.usd,
                "author": self.author.usd * self.generations}

    @property
    def total_usd(self) -> float:
        return sum(self.level_usd.values())

    def lines(self) -> list[str]:
        out = [f"estimate ({self.model} at ${self.prices[0]:g} / ${self.prices[1]:g} per million tokens in / out; "
               f"before anything is recorded):",
               "  " + self.inner.line("per generation"), "  " + self.author.line("per generation"),
               "  " + self.final.line("once, test panel"),
               f"  total for {self.generations} generation{'s' * (self.generations != 1)}: "
               f"${self.total_usd:.2f} (inner ${self.level_usd['inner']:.2f}, author ${self.level_usd['author']:.2f})"]
        return out + ["  basis: " + b for b in self.basis]


def _calls_cost(ref: ModelRef | None, level: str, calls: int, prompt: int, system: int, answer: int,
                followups: int = 0, feedback: int = 0) -> LevelCost:
    """``calls`` conversations of one prompt (``prompt`` tokens, ``system`` of them the system prompt), each
    answered in ``answer`` tokens and continued ``followups`` times (the answer and ``feedback`` sent back)."""
    if ref is None or calls == 0:
        return LevelCost(level, 0, 0, 0, 0, 0, 0.0)
    anthropic = ref.backend == "anthropic"
    n_in = n_out = write = read = 0
    for turn in range(followups + 1):
        size = prompt + turn * (answer + feedback)
        if anthropic and level == "author":  # the last message is marked: its prefix is written, then read
            before = prompt + (turn - 1) * (answer + feedback) if turn else 0
            new = size - before
            if size >= MIN_CACHE_TOKENS:
                read, write = read + before, write + new
            else:
                n_in += size
        elif anthropic and system >= MIN_CACHE_TOKENS:  # the system prompt alone is cached
            n_in += size - system
            read += system
        else:
            n_in += size
        n_out += answer
    calls_total = calls * (followups + 1)
    t_in, t_out, cw, cr = n_in * calls, n_out * calls, write * calls, read * calls
    if anthropic and level == "inner" and system >= MIN_CACHE_TOKENS:  # the first call writes it
        cr -= system
        cw += system
    return LevelCost(level, calls_total, t_in, t_out, cw, cr, ref.cost(t_in, t_out, cw, cr))


def _panel_runs(spec: RunSpec, panels: Panels) -> tuple[int, int, list[str]]:
    """(inner runs per generation, inner runs of the final test panel, basis lines)."""
    run = spec["run"]
    n_cand = run["candidates"] + (1 if run["level15"] else 0)
    s, v, t = len(panels.search), len(panels.validation), len(panels.test)
    c = len(panels.confirmation(0)) if panels.confirmation_instances else 0
    per_gen = s + v + n_cand * v + 2 * c
    basis = [f"inner runs per generation: {s} search + {v} validation (incumbent) + {n_cand} candidates x {v} "
             f"validation pairs (none stopped at stage 1) + 2 x {c} confirmation = {per_gen}; "
             f"then 2 x {t} test-panel runs once"]
    return per_gen, 2 * t, basis


def _proposer_prompt(spec: RunSpec, space: Space, settings: InnerSettings, ref: ModelRef) -> tuple[str, str]:
    """The proposer's real prompt late in an inner run: a full history of random configs of this space."""
    proposer = LLMProposer(space, settings.search, 0, ref, "estimate")
    rng = np.random.default_rng(0)
    budget = spec["inner"]["budget"]
    for i in range(min(budget, 12)):
        proposer.tell(Trial(i, space.sample(rng), float(rng.random()), i == 0, "base:llm"))
    incumbent = Trial(0, space.sample(rng), 0.5, True, "base:llm")
    return proposer.prompt(budget - 1, incumbent, {"step_scale": 1.0})


def _proposal_answer(space: Space, n_changes: int, per_call: int) -> str:
    """A well-formed answer of ``per_call`` proposals, each changing ``n_changes`` parameters of ``space``."""
    config = space.sample(np.random.default_rng(1))
    one = {"changes": {n: config[n] for n in space.names[:max(1, n_changes)]}, "hypothesis": HYPOTHESIS}
    return json.dumps(one if per_call == 1 else {"proposals": [one] * per_call})


def _author_prompt(spec: RunSpec, space: Space, settings: InnerSettings, brief: AuthorBrief | None
                   ) -> tuple[str, str]:
    """The author's real first request of generation 0 (its system prompt with the run's brief, and the first
    user message; the built-in library, no traces yet)."""
    from bilevel.outer.authors.base import AuthorContext
    from bilevel.outer.authors.llm import LLMAuthor, prompt_texts
    from bilevel.outer.traces import analyse

    library = tuple(Mechanism(name, load_source(name)) for name in BUILTIN_NAMES)
    ctx = AuthorContext(0, spec["run"]["seed"], Stack((), settings.search), library,
                        analyse(space, []), frozenset(), ())
    author = LLMAuthor(caller=None, check=lambda _s: {"ok": True}, brief=brief)  # type: ignore[arg-type]
    return author.system_prompt(ctx), author.user_prompt(ctx, 0, [], prompt_texts()[1])


def estimate(spec: RunSpec, space: Space, panels: Panels, settings: InnerSettings,
             brief: AuthorBrief | None = None) -> Estimate | None:
    """The run's estimate, or None when neither level has a priced model (local and scripted ones are free).
    ``space``: the first search-panel instance's; ``settings``: ``runs.driver.inner_settings(spec)``;
    ``brief``: what the LLM author is told about the run (``runs.driver.author_brief``)."""
    inner_ref, author_ref = inner_model(spec), author_model(spec) if spec["run"]["author"] == "llm" else None
    priced = [r for r in (inner_ref, author_ref) if r is not None and (r.prices[0] > 0 or r.prices[1] > 0)]
    if not priced:
        return None
    llm, inner = spec["llm"], spec["inner"]
    per_gen_runs, test_runs, basis = _panel_runs(spec, panels)
    per_call = llm["proposals_per_call"]
    init = settings.search.init_random
    calls_per_run = math.ceil(max(0, inner["budget"] - init) / per_call)
    inner_cost = final = LevelCost("inner", 0, 0, 0, 0, 0, 0.0)
    if inner_ref is not None:
        system, user = _proposer_prompt(spec, space, settings, inner_ref)
        answer = min(tokens(_proposal_answer(space, inner["n_changes"], per_call)), llm["max_tokens"])
        prompt = tokens(system) + tokens(user)
        inner_cost = _calls_cost(inner_ref, "inner", per_gen_runs * calls_per_run, prompt, tokens(system), answer)
        final = _calls_cost(inner_ref, "inner", test_runs * calls_per_run, prompt, tokens(system), answer)
        basis.append(f"proposer: {calls_per_run} calls per inner run ({inner['budget']} trials - {init} random, "
                     f"{per_call} proposals per call, no retries); prompt {prompt:,} tokens "
                     f"({len(system) + len(user):,} characters, built now), answer {answer:,} tokens")
    author_cost = LevelCost("author", 0, 0, 0, 0, 0, 0.0)
    if author_ref is not None:
        system, user = _author_prompt(spec, space, settings, brief)
        longest = max(len(load_source(n)) for n in BUILTIN_NAMES)
        answer = min(math.ceil((longest + PROSE_CHARS) / CHARS_PER_TOKEN), llm["author_answer_tokens"])
        prompt = tokens(system) + tokens(user)
        repairs = llm["author_repairs"]
        author_cost = _calls_cost(author_ref, "author", spec["run"]["candidates"], prompt, tokens(system), answer,
                                  followups=repairs, feedback=tokens("x" * 600))
        basis.append(f"author: {spec['run']['candidates']} candidates x {1 + repairs} calls (every repair used); "
                     f"prompt {prompt:,} tokens ({len(system) + len(user):,} characters, built now), answer "
                     f"{answer:,} tokens (the longest built-in mechanism and its explanation)")
    basis.append(f"{CHARS_PER_TOKEN} characters per token; Anthropic prompt caching as the backend asks for it")
    main = priced[0]
    return Estimate(main.spec, main.prices, spec["run"]["generations"], inner_cost, author_cost, final, tuple(basis))


def gate(spec: RunSpec, space: Space, panels: Panels, settings: InnerSettings, yes: bool, runs: int = 1,
         brief: AuthorBrief | None = None,
         say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Estimate | None:
    """Print the estimate (stderr) and refuse with :class:`CostRefused` when more than :data:`LIMIT_USD`
    of it has no dollar cap and ``yes`` is false. Called before a run is recorded; a study of ``runs``
    such runs (``bilevel ablate``) is gated once on ``runs`` times the estimate."""
    est = estimate(spec, space, panels, settings, brief)
    if est is None:
        return None
    for line in est.lines():
        say(line)
    llm = spec["llm"]
    uncapped = {lvl: usd * runs for lvl, usd in est.level_usd.items() if usd > 0 and not llm[f"{lvl}_max_usd"]}
    if runs > 1:
        say(f"  study of {runs} such runs: about ${est.total_usd * runs:.2f}")
    caps = [f"{lvl}_max_usd = {llm[f'{lvl}_max_usd']:g}" for lvl in ("inner", "author") if llm[f"{lvl}_max_usd"]]
    if caps:
        say("  capped: " + ", ".join(caps) + " (the run stops cleanly there; `bilevel resume RUN --cap` goes on)")
    if sum(uncapped.values()) > LIMIT_USD and not yes:
        parts = ", ".join(f"{lvl} ${usd:.2f}" for lvl, usd in uncapped.items())
        what = "this run" if runs == 1 else f"this study ({runs} runs)"
        raise CostRefused(f"{what} is estimated at ${est.total_usd * runs:.2f} ({parts} with no dollar cap), over "
                          f"${LIMIT_USD:g}: set a cap in the spec ([llm] inner_max_usd = ... / author_max_usd = ...) "
                          "or pass --yes to run it anyway; nothing was recorded")
    if yes and sum(uncapped.values()) > LIMIT_USD:
        say(f"  --yes: going ahead over ${LIMIT_USD:g} with no dollar cap")
    return est
