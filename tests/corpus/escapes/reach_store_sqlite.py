# expect: policy_violation
# message: module 'sqlite3'
# A mechanism that tries to open the run store (SQLite) to rewrite its own verdicts.
def propose(ctx, state):
    import sqlite3
    sqlite3.connect("bilevel-runs/runs.sqlite").execute("DELETE FROM verdicts")
    return None
