"""A kept stack as an OptunaHub sampler package (``bilevel export RUN --optunahub DIR``).

The package follows the optunahub-registry template: ``README.md`` with the
registry's YAML front matter, ``__init__.py`` exposing :data:`CLASS_NAME`
(constructs with no arguments; ``seed`` is an optional keyword), the stack as
``stack.json`` next to it (the file :func:`write_sampler_file` writes),
``example.py``, ``requirements.txt`` and ``LICENSE``. Load it with
``optunahub.load_local_module(package=..., registry_root=...)``.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from bilevel.judge.stack import Stack
from bilevel.runs.optuna_sampler import write_sampler_file

CLASS_NAME = "BilevelStackSampler"
STACK_FILE = "stack.json"

_INIT = '''"""OptunaHub package: a bilevel mechanism stack as an optuna sampler (written by `bilevel export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilevel.runs.optuna_sampler import StackSampler

_STACK = Path(__file__).with_name("{stack_file}")


class {cls}(StackSampler):
    """The stack embedded in this package ({describe}); ``seed`` and StackSampler's keywords are optional."""

    def __init__(self, *, seed: int | None = None, **kwargs: Any) -> None:
        loaded = StackSampler.load(_STACK, seed=seed, **kwargs)
        kwargs.setdefault("budget", loaded.budget)
        super().__init__(loaded.stack, seed=seed, **kwargs)


__all__ = ["{cls}"]
'''

_EXAMPLE = '''import optuna
import optunahub


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 2) ** 2


module = optunahub.load_module(package="samplers/{name}")
sampler = module.{cls}(seed=0)
study = optuna.create_study(sampler=sampler)
study.optimize(objective, n_trials=50)
print(study.best_params, study.best_value)
sampler.close()
'''

_README = '''---
author: {author}
title: "Bilevel stack sampler {name}"
description: "A mechanism stack discovered by bilevel ({describe_q}) as an optuna sampler."
tags: [sampler, bilevel, mechanism stack]
optuna_versions: ["{optuna_version}"]
license: MIT License
---

## Abstract

A search-mechanism stack kept by a bilevel run{run}: {describe}. Its mechanisms run in bilevel's
sandbox exactly as in the inner loop (guide, propose, review, observe), with the stack's base proposer
behind them; parameters outside the relative search space fall back to optuna's `RandomSampler`.
Single-objective studies only (minimise or maximise).

## Class or Function Names

- {cls}

## Installation

```shell
pip install -r requirements.txt
```

## Example

```python
{example}```
'''

_LICENSE = '''MIT License

Copyright (c) {author}

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
USE OR OTHER DEALINGS IN THE SOFTWARE.
'''


def write_optunahub_package(stack: Stack, directory: Path, run_id: str = "", budget: int = 200,
                            author: str = "bilevel") -> Path:
    """Write the package into ``directory`` (created if missing); called by ``bilevel export --optunahub``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--optunahub {directory} is a file; give a directory for the package")
    directory.mkdir(parents=True, exist_ok=True)
    name = directory.name
    describe = stack.describe()
    write_sampler_file(stack, directory / STACK_FILE, run_id, budget=budget)
    example = _EXAMPLE.format(name=name, cls=CLASS_NAME)
    files = {
        "__init__.py": _INIT.format(stack_file=STACK_FILE, cls=CLASS_NAME, describe=describe),
        "example.py": example,
        "requirements.txt": "bilevel\noptuna>=5.0,<6\n",
        "LICENSE": _LICENSE.format(author=author),
        "README.md": _README.format(author=author, name=name, describe=describe,
                                    describe_q=describe.replace('"', "'"), optuna_version=optuna.__version__,
                                    run=f" ({run_id})" if run_id else "", cls=CLASS_NAME, example=example),
    }
    for fname, text in files.items():
        (directory / fname).write_text(text, encoding="utf-8")
    return directory
