"""Which base proposer an inner run gets: the LLM proposer, greedy, random or an optuna sampler.

Called once per inner run, by the inner loop, when the run starts.
"""

from __future__ import annotations

from bilevel.inner.chat import ModelRef
from bilevel.inner.llm_proposer import LLMProposer
from bilevel.inner.optuna_proposer import OptunaProposer
from bilevel.inner.proposers import GreedyProposer, Proposer, RandomProposer
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import Space


def make_proposer(space: Space, config: SearchConfig, seed: int, model: ModelRef | None = None,
                  context: str = "", llm_retries: int = 2) -> Proposer:
    """The base proposer for one inner run with ``seed``: the LLM proposer when ``model`` is given
    (its fallback follows ``config.strategy``), else the one ``config.strategy`` names.
    ``context`` names the inner run in the LLM's call records."""
    if model is not None:
        return LLMProposer(space, config, seed, model, context=context, retries=llm_retries)
    if config.strategy is Strategy.GREEDY:
        return GreedyProposer(space, config, seed)
    if config.strategy is Strategy.RANDOM:
        return RandomProposer(space, config, seed)
    return OptunaProposer(space, config, seed)
