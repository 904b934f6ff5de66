"""Authors write candidate mechanism stacks for the outer loop, one generation at a time.

``offline`` recombines and rewrites the library without a model (blind, seeded, replayable); ``llm`` asks a
model through the chat protocol with a prompt generated from the code (``brief``, ``reference``); a replay
of a run is the LLM author answering from recorded calls. It may import ``bilevel.mechanisms``,
``bilevel.sandbox``, ``bilevel.inner``, ``bilevel.judge`` and the rest of ``bilevel.outer`` (the trace
analysis, the operators, the probe); never the run store or the command line.
"""

from __future__ import annotations

from bilevel.inner.chat import Caller
from bilevel.outer.authors.base import Author, AuthorContext, Candidate, UnknownAuthor
from bilevel.outer.authors.brief import AuthorBrief
from bilevel.outer.authors.llm import Check, LLMAuthor
from bilevel.outer.authors.offline import OfflineAuthor

AUTHORS = ("offline", "llm")


def make_author(name: str, caller: Caller | None = None, check: Check | None = None, repairs: int = 2,
                brief: AuthorBrief | None = None) -> Author:
    """The author called ``name``; UnknownAuthor lists the known names.

    ``llm`` needs ``caller`` (the model, with its recording) and ``check``
    (the conformance check the outer loop uses); ``brief`` (the run as the author sees it) makes its
    prompt carry the reference generated from the code."""
    if name == "offline":
        return OfflineAuthor()
    if name == "llm":
        if caller is None or check is None:
            raise UnknownAuthor("the llm author needs a model: bilevel run --model backend:model "
                                "(e.g. ollama:qwen2.5:7b)")
        return LLMAuthor(caller, check, repairs, brief=brief)
    raise UnknownAuthor(f"unknown author {name!r}; known authors: {', '.join(AUTHORS)}")


__all__ = ["AUTHORS", "Author", "AuthorContext", "Candidate", "LLMAuthor", "OfflineAuthor", "UnknownAuthor", "make_author"]
