"""The run spec: one TOML file (or the embedded defaults) plus command-line overrides.

Sections and their keys are fixed; an unknown section or key, or a value of
the wrong type, is refused with a message naming it and the allowed ones.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bilevel.inner.search_config import Strategy

DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"benchmark": "bbob", "author": "offline", "seed": 0, "generations": 4, "candidates": 5,
            "level15": True, "wall_time_s": 0.0, "workers": 2, "executor": "process", "address": "",
            "library": [],  # your own mechanism files (paths; relative to the spec file's folder)
            "preflight": True},  # one trial of the benchmark before a run is recorded (off for costly ones)
    "benchmark": {},
    "inner": {"budget": 60, "max_rejections": 3, "strategy": "greedy", "step_size": 0.15, "n_changes": 2},
    "panels": {"search_instances": 4, "validation_instances": 16, "test_instances": 16,
               "seeds_per_instance": 2, "salt": "bilevel-v1",
               # instances of each generation's fresh confirmation panel (-1: auto, up to 12; 0: off);
               # split: "instance" or "group" (validate on groups the search never showed)
               "confirmation_instances": -1, "split": "instance"},
    "judge": {"promotion": 0.02, "regression_cap": 1.0, "fault_tolerance": 0.05, "min_changed_share": 0.01,
              "confidence": 0.95, "n_boot": 2000, "stage1_pairs": 8, "stage1_margin": 0.0, "veto_floors": {},
              "subscore_regression_caps": {}, "subscore_directions": {}},
    # The model of both loops (issue 3): "backend:model"; empty means no model (offline author, base proposer).
    # author_model is empty (the same model) unless an ablation names another one. Caps: 0 means none.
    "llm": {"model": "", "author_model": "", "temperature": 0.0, "seed": 0, "max_tokens": 1024,
            "timeout_s": 120.0, "retries": 3, "backoff_s": 1.0, "stream": False, "proposer_retries": 2,
            "author_repairs": 2, "prices": {},
            # The author's own call settings (max_tokens, timeout_s and temperature above are the proposer's):
            # a mechanism answer runs to 2k tokens and more, so the author gets room and time for one.
            "author_answer_tokens": 8192, "author_timeout_s": 600.0, "author_temperature": 0.0,
            # inner: "model" (the LLM proposes in the inner loop too) or "numeric" (the base strategy proposes,
            # the model only writes mechanisms: a study arm). proposals_per_call: proposals per proposer call.
            "inner": "model", "proposals_per_call": 8,
            # the LLM author writes a generation's candidates one after another, each prompt showing the earlier verdicts
            "sequential_candidates": False,
            # Ollama: how long the server keeps the model loaded after a call (a duration: "30m", "1h", "-1")
            "keep_alive": "30m",
            # Anthropic prompt caching (cache_control on the static prefixes); false sends plain prompts
            "prompt_cache": True,
            "inner_max_tokens": 0, "inner_max_usd": 0.0, "inner_max_wall_s": 0.0,
            "author_max_tokens": 0, "author_max_usd": 0.0, "author_max_wall_s": 0.0,
            # a LoRA adapter of the mlx model (`bilevel tune`); its hash is recorded when the run starts
            "adapter": "", "adapter_hash": ""},
    "sandbox": {"call_timeout_s": 2.0, "run_timeout_s": 120.0, "memory_bytes": 1 << 30},
}

# Benchmark options are the benchmark's own to check; every other section is checked here.
FREE_SECTIONS = {"benchmark"}


class SpecError(ValueError):
    """The spec is malformed; the message says where and how to fix it."""


@dataclass(frozen=True)
class RunSpec:
    """A validated spec. ``data`` has every section of DEFAULTS, filled in."""

    data: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.data[section]

    def to_json(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.data)


def _check_type(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SpecError(f"{where} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where} must be a number, got {value!r}")
        return float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise SpecError(f"{where} must be a string, got {value!r}")
    elif isinstance(default, dict) and not isinstance(value, dict):
        raise SpecError(f"{where} must be a table, got {value!r}")
    return value


def merge(base: dict[str, dict[str, Any]], updates: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """``base`` with ``updates`` applied, checking sections, keys and types."""
    out = copy.deepcopy(base)
    for section, values in updates.items():
        if section not in DEFAULTS:
            raise SpecError(f"{source}: unknown section [{section}]; sections are {', '.join(DEFAULTS)}")
        if not isinstance(values, dict):
            raise SpecError(f"{source}: [{section}] must be a table of key = value")
        for key, value in values.items():
            if section in FREE_SECTIONS:
                out[section][key] = value
                continue
            if key not in DEFAULTS[section]:
                allowed = ", ".join(DEFAULTS[section])
                raise SpecError(f"{source}: unknown key {key!r} in [{section}]; allowed: {allowed}")
            out[section][key] = _check_type(section, key, value, DEFAULTS[section][key])
    return out


def load_spec(path: Path | None = None, overrides: dict[str, Any] | None = None,
              source: str = "command line") -> RunSpec:
    """The defaults, then the TOML file at ``path``, then ``overrides`` (from flags, or the dict given to
    ``bilevel.run``; ``source`` names them in error messages)."""
    data = copy.deepcopy(DEFAULTS)
    parsed: dict[str, Any] = {}
    if path is not None:
        try:
            parsed = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SpecError(f"spec file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"spec file {path} is not valid TOML: {exc}") from exc
    data = merge(data, _suggested(parsed, overrides or {}), "benchmark defaults")
    if path is not None:
        data = merge(data, parsed, str(path))
    if overrides:
        data = merge(data, overrides, source)
    _check_ranges(data)
    return RunSpec(data)


def _suggested(parsed: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The chosen benchmark's suggested defaults (``Benchmark.SUGGESTED``): they sit between the
    built-in defaults and the user's file and flags, so anything the user sets wins."""
    from bilevel.judge.benchmarks import suggested_defaults

    name = DEFAULTS["run"]["benchmark"]
    for layer in (parsed, overrides):
        run = layer.get("run")
        if isinstance(run, dict) and "benchmark" in run:
            name = run["benchmark"]
    return suggested_defaults(name)


_STRATEGIES = tuple(s.value for s in Strategy)


def _check_ranges(data: dict[str, dict[str, Any]]) -> None:
    run, inner = data["run"], data["inner"]
    rules = [
        (run["generations"] >= 1, "[run] generations must be at least 1"),
        (run["candidates"] >= 1, "[run] candidates must be at least 1"),
        (run["workers"] >= 1, "[run] workers must be at least 1"),
        (run["executor"] in ("inprocess", "process", "ray"),
         f"[run] executor must be inprocess, process or ray, got {run['executor']!r}"),
        (not run["address"] or run["executor"] == "ray", "[run] address is for executor = \"ray\" only"),
        (run["wall_time_s"] >= 0, "[run] wall_time_s must be >= 0 (0 means no limit)"),
        (inner["budget"] >= 2, "[inner] budget must be at least 2 trials"),
        (0 < inner["step_size"] <= 1, "[inner] step_size must be in (0, 1]"),
        (data["sandbox"]["call_timeout_s"] > 0, "[sandbox] call_timeout_s must be > 0"),
        (run["author"] != "llm" or bool(data["llm"]["model"]),
         '[run] author = "llm" needs a model: --model backend:model (e.g. ollama:qwen2.5:7b) or [llm] model'),
        (not data["llm"]["author_model"] or bool(data["llm"]["model"]),
         "[llm] author_model (an ablation: another model for the author) needs [llm] model as well"),
        (all(data["llm"][k] >= 0 for k in data["llm"] if "_max_" in k), "[llm] caps must be >= 0 (0 means none)"),
        (data["llm"]["max_tokens"] >= 1 and data["llm"]["timeout_s"] > 0 and data["llm"]["retries"] >= 0,
         "[llm] max_tokens must be >= 1, timeout_s > 0 and retries >= 0"),
        (data["llm"]["author_answer_tokens"] >= 1 and data["llm"]["author_timeout_s"] > 0,
         "[llm] author_answer_tokens must be >= 1 and author_timeout_s > 0"),
        (data["llm"]["inner"] in ("model", "numeric"),
         f'[llm] inner must be "model" or "numeric", got {data["llm"]["inner"]!r}'),
        (data["llm"]["proposals_per_call"] >= 1, "[llm] proposals_per_call must be >= 1"),
        (inner["strategy"] in _STRATEGIES,
         f"[inner] strategy must be one of {', '.join(_STRATEGIES)}, got {inner['strategy']!r}"
         + ('; the model proposes in the inner loop when [llm] model is set (and [llm] inner = "model")'
            if inner["strategy"] in ("llm", "model") else "")),
    ]
    for ok, message in rules:
        if not ok:
            raise SpecError(message)
