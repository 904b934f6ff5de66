"""bilevel.outer, Level 2 and Level 1.5: trace analysis, the authors, the LLM clients, the outer loop.

It writes candidate mechanisms, has them judged and keeps or reverts them under hard budgets.
It may import ``bilevel.mechanisms``, ``bilevel.sandbox``, ``bilevel.inner`` and ``bilevel.judge``;
never the run store or the command line.
"""
