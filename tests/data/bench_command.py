"""A stand-in user benchmark for the ``command`` tests: behaves by the instance name it is given."""

from __future__ import annotations

import json
import os
import sys
import time

payload = json.load(open(os.environ["BILEVEL_INPUT"], encoding="utf-8"))
x, name = float(payload["config"]["x"]), payload["instance"]
out = os.environ["BILEVEL_RESULT"]
print('{"score": -1000}')  # stdout is never trusted
if name == "sleepy":
    time.sleep(30)
elif name == "silent":
    sys.exit(0)
elif name == "garbled":
    open(out, "w").write("{not json")
elif name == "stringy":
    json.dump({"score": "low"}, open(out, "w"))
elif name == "crash":
    sys.exit("boom: bad input")
else:
    json.dump({"score": (x - 0.3) ** 2 + 0.001 * payload["seed"], "subscores": {"domain:code": 1.0 - x}},
              open(out, "w"))
