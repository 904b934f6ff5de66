"""A tiny spec for a user's own benchmark (``command`` or ``python``), shared by the tests that run one."""

from __future__ import annotations

# fill in with .format(benchmark="command" | "python", options="<that benchmark's options>")
TINY = """
[run]
benchmark = "{benchmark}"
generations = 1
candidates = 1
workers = 1
executor = "inprocess"
[benchmark]
{options}
params = ["x:float:0:1"]
instances = ["g/a", "g/b", "h/c", "h/d"]
timeout_s = 20
[inner]
budget = 4
[panels]
search_instances = 1
validation_instances = 2
test_instances = 1
seeds_per_instance = 2
[judge]
n_boot = 50
stage1_pairs = 1
"""

TRAIN_SCRIPT = ("import json, os\nc = json.load(open(os.environ['BILEVEL_INPUT']))['config']\n"
                "json.dump({'score': (c['x'] - 0.3) ** 2}, open(os.environ['BILEVEL_RESULT'], 'w'))\n")
