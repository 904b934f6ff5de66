"""Authors write candidate mechanism stacks: offline (no model) now; LLM and replay authors plug in here."""

from __future__ import annotations

from outer.authors.base import Author, AuthorContext, Candidate, UnknownAuthor
from outer.authors.offline import OfflineAuthor

AUTHORS = ("offline",)


def make_author(name: str) -> Author:
    """The author called ``name``; UnknownAuthor lists the known names."""
    if name == "offline":
        return OfflineAuthor()
    raise UnknownAuthor(f"unknown author {name!r}; known authors: {', '.join(AUTHORS)}")


__all__ = ["AUTHORS", "Author", "AuthorContext", "Candidate", "OfflineAuthor", "UnknownAuthor", "make_author"]
