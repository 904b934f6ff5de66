"""bilevel.mechanisms: the mechanism contract, spacekit and the built-in mechanisms (restricted source).

The bottom of the import graph: it imports nothing else of bilevel. The built-ins under
``builtin/`` are source text in the restricted dialect, loaded through the sandbox like any
LLM-written mechanism, never imported by the host.
"""
