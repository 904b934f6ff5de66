"""bilevel.runs: the run store and everything a user does with runs, and the command line.

Store, driver, lineage, compare, replay, report, exports, ablation and the ``bilevel`` CLI. The
top of the import graph: it may import every other room of bilevel; nothing but the public
API (``bilevel/__init__``) imports it.
"""
