"""bilevel.judge, the fixed point: benchmarks, panels, scoring, statistics, the keep rule, the manifest.

Nothing the outer loop writes can change a score or a decision made here. It may import
``bilevel.mechanisms``, ``bilevel.sandbox`` and ``bilevel.inner``; never the outer loop or the run store.
"""
