"""bilevel.inner, Level 1: the search space, the inner loop with its hook points, and the base proposers.

It runs one inner search (propose, run, score, keep or revert) against an objective it does not
own, through the protocols it defines (``inner.objective``, ``inner.chat``). It may import
``bilevel.mechanisms`` and ``bilevel.sandbox``; never the judge, the outer loop or the run store.
"""
