"""Start, resume and finish runs: build the judge, the evaluator and the outer loop from a stored spec."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bilevel.inner.loop import InnerSettings
from bilevel.inner.search_config import SearchConfig, Strategy
from bilevel.inner.space import Space
from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.benchmarks.base import Benchmark
from bilevel.judge.conformance import check_conformance
from bilevel.judge.decision import Thresholds
from bilevel.judge.evaluate import Judge
from bilevel.judge.manifest import Manifest, build_manifest, verify_manifest
from bilevel.judge.panels import Panels, PanelSpec, split_panels
from bilevel.judge.stack import Mechanism, Stack
from bilevel.mechanisms.library import BUILTIN_NAMES, load_source
from bilevel.outer.authors import Author, make_author
from bilevel.outer.authors.brief import AuthorBrief, make_brief
from bilevel.outer.evaluator import BenchmarkRef, PanelEvaluator
from bilevel.outer.executors import ExecutorSpec, make_executor
from bilevel.outer.loop import OuterLoop, OuterSettings, OuterState
from bilevel.runs.failures import FailureWatch, failed_trials_line, failure_counts
from bilevel.runs.llm_setup import LedgerGuard, author_caller, check_models, inner_model
from bilevel.runs.preflight import check_panel_sizes, default_workdir, preflight_trial
from bilevel.runs.spec import RunSpec, merge
from bilevel.runs.store import RunRecorder, Store
from bilevel.runs.summary_numbers import panel_numbers
from bilevel.runs.user_library import library_paths, read_mechanisms, record_library, recorded_library
from bilevel.sandbox import Limits


@dataclass(frozen=True)
class JudgeSetup:
    """The fixed points of a run, rebuilt from its spec each time the run is started or resumed."""

    benchmark: Benchmark
    panels: Panels
    thresholds: Thresholds
    manifest: Manifest


def judge_setup(spec: RunSpec) -> JudgeSetup:
    benchmark = get_benchmark(spec["run"]["benchmark"], spec["benchmark"])
    panel_spec = PanelSpec(**spec["panels"])
    check_panel_sizes(len(benchmark.instances()), panel_spec, spec["run"]["benchmark"])
    panels = split_panels(benchmark.instances(), panel_spec)
    thresholds = Thresholds.from_json(spec["judge"])
    return JudgeSetup(benchmark, panels, thresholds, build_manifest(benchmark, panels, thresholds))


def author_brief(spec: RunSpec, setup: JudgeSetup, settings: InnerSettings) -> AuthorBrief:
    """What the LLM author is told about the run (``outer.authors.brief``); the cost estimate builds the
    author's real prompt with it."""
    return make_brief(spec["run"]["benchmark"], setup.benchmark.SCORE_TEXT, first_search_space(setup), settings,
                      [e.group for e in setup.panels.search], spec["llm"]["author_repairs"],
                      [setup.benchmark.space(i) for i in setup.benchmark.instances()])


def first_search_space(setup: JudgeSetup) -> Space:
    """The space of the first search-panel instance (whose traces the author is shown first)."""
    entries = setup.panels.search or setup.panels.validation
    benchmark = setup.benchmark
    return benchmark.space(benchmark.instance(entries[0].instance) if entries else benchmark.instances()[0])


def inner_settings(spec: RunSpec) -> InnerSettings:
    inner = spec["inner"]
    search = SearchConfig(strategy=Strategy(inner["strategy"]), step_size=inner["step_size"],
                          n_changes=inner["n_changes"])
    box = spec["sandbox"]
    limits = Limits(call_timeout_s=box["call_timeout_s"], run_timeout_s=box["run_timeout_s"],
                    memory_bytes=int(box["memory_bytes"]))
    return InnerSettings(budget=inner["budget"], search=search, max_rejections=inner["max_rejections"],
                         limits=limits,
                         model=inner_model(spec), llm_retries=spec["llm"]["proposer_retries"])


def builtin_library() -> list[Mechanism]:
    return [Mechanism(name, load_source(name)) for name in BUILTIN_NAMES]


def new_run_id(spec: RunSpec) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec['run']['benchmark']}-{stamp}-{secrets.token_hex(3)}"


def with_paths(spec: RunSpec, spec_path: Path | None, library: Sequence[Path] = ()) -> RunSpec:
    """``spec`` with its paths absolute: a user benchmark's ``workdir`` (default: the spec file's folder,
    else the current one) and ``[run] library`` (relative to the spec file's folder), plus the ``library``
    files given on the command line (relative to the current folder)."""
    data = spec.to_json()
    data["benchmark"] = default_workdir(spec["benchmark"], spec["run"]["benchmark"], spec_path)
    base = Path(spec_path).resolve().parent if spec_path is not None else None
    paths = library_paths(spec["run"]["library"], base) + [Path(p).resolve() for p in library]
    data["run"]["library"] = [str(p) for p in paths]
    return RunSpec(data)


def library_mechanisms(spec: RunSpec) -> list[Mechanism]:
    """The spec's own mechanism files, read and conformance-checked (LibraryError names a bad one)."""
    return read_mechanisms(library_paths(spec["run"]["library"], None), inner_settings(spec).limits)


def check_new_run(spec: RunSpec, preflight: bool = True, yes: bool = False, estimate: bool = True) -> JudgeSetup:
    """Every check made before a run is recorded: the judge (panel sizes), the author, the models, the
    cost estimate of a priced model (printed; over $5 with no dollar cap refused unless ``yes``) and one
    pre-flight trial of the benchmark (``preflight``); ``estimate=False``: the caller gates the cost itself.
    Raises with the cause; records nothing."""
    setup = judge_setup(spec)
    if spec["run"]["author"] != "llm":
        make_author(spec["run"]["author"])  # refuse an unknown author before anything is recorded
    check_models(spec)  # a missing API key, package or model path fails before anything is recorded
    if estimate:
        from bilevel.runs.estimate import gate

        settings = inner_settings(spec)
        gate(spec, first_search_space(setup), setup.panels, settings, yes, brief=author_brief(spec, setup, settings))
    if preflight and spec["run"]["preflight"]:
        preflight_trial(setup.benchmark, setup.panels, spec["run"]["benchmark"])
    return setup


def record_run(store: Store, spec: RunSpec, setup: JudgeSetup, library: Sequence[Mechanism] = ()) -> str:
    """Record a new run (its spec, judge manifest and the user's ``library`` mechanisms) that
    ``check_new_run`` passed; return its id."""
    run_id = new_run_id(spec)
    store.create_run(run_id, spec.to_json(), setup.manifest.to_json(), setup.manifest.hash)
    record_library(store.recorder(run_id), library)
    return run_id


def create_run(store: Store, spec: RunSpec, preflight: bool = True,
               library: Sequence[Mechanism] | None = None, yes: bool = False) -> str:
    """Check and record a new run and return its id; nothing is evaluated yet except one pre-flight
    trial of the benchmark (``preflight``), which must succeed. ``library``: the user's mechanisms
    (default: read from the spec's ``[run] library`` files; a replay passes the original's recorded ones).
    ``yes``: go ahead when a priced model's estimate is over $5 with no dollar cap (``--yes``)."""
    library = library_mechanisms(spec) if library is None else library
    return record_run(store, spec, check_new_run(spec, preflight, yes), library)


def new_run(store_dir: Path, spec: RunSpec, yes: bool = False) -> tuple[Store, str]:
    """A new run as ``bilevel run`` and ``bilevel.run`` start one: the tuned author's adapter pinned
    (``runs.finetune.pin_adapter``), the user's library read, every check of ``check_new_run`` passed,
    and only then the store in ``store_dir`` opened (so a refused run leaves nothing behind) and the run
    recorded. Returns the open store and the run's id."""
    from bilevel.runs.finetune import pin_adapter

    spec = pin_adapter(spec)
    library = library_mechanisms(spec)
    setup = check_new_run(spec, yes=yes)
    store = Store.in_dir(store_dir)
    return store, record_run(store, spec, setup, library)


def effective_spec(store: Store, run_id: str) -> RunSpec:
    """The run's spec with the budget changes recorded by later resumes applied in order."""
    data = store.run(run_id).spec
    for event in store.events(run_id, "resume"):
        data = merge(data, event["overrides"], "resume")
    return RunSpec(data)


@dataclass(frozen=True)
class Summary:
    """What a finished (or stopped) run prints: one ``key: value`` per line."""

    fields: dict[str, Any]

    def lines(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.fields.items()]


def execute(store: Store, run_id: str, progress: Callable[[str], None] = lambda _m: None,
            on_eval: Callable[[int, int], None] | None = None, author: Author | None = None,
            on_failed: Callable[[int], None] | None = None) -> Summary:
    """Run (or continue) ``run_id`` to its end and return its summary.

    ``author`` replaces the spec's author (the ablation's Level-1.5-only group
    passes one that writes nothing).

    ``on_failed(n)`` hears of the failed trials of each inner run that had some (progress).

    Raises ``judge.errors.ManifestMismatch`` before doing anything if the
    judge differs from the one the run was started with, and
    ``runs.failures.BaselineFailed`` if the baseline fails every trial of a panel.
    """
    started = time.monotonic()
    row = store.run(run_id)
    spec = effective_spec(store, run_id)
    setup = judge_setup(spec)
    verify_manifest(Manifest.from_json(row.manifest), setup.manifest)
    recorder = store.recorder(run_id)
    settings = inner_settings(spec)
    run = spec["run"]
    executor = make_executor(ExecutorSpec(run["executor"], run["workers"], run["address"]))
    first_panel = setup.panels.search or setup.panels.validation
    watch = FailureWatch(recorder, Stack((), settings.search).key, len(first_panel), on_failed)
    evaluator = PanelEvaluator(BenchmarkRef.of(run["benchmark"], spec["benchmark"]), settings,
                               cache=watch, workers=run["workers"], on_eval=on_eval, executor=executor)
    try:
        state = _outer(spec, setup, settings, evaluator, recorder, progress, started, author).run()
        summary = _summarise(run_id, spec, setup, evaluator, state, recorder, started, progress)
    finally:
        evaluator.close()
    recorder.record_event(f"end:{state.generations_done}:{state.stopped}", "run_end", summary.fields)
    return summary


def _outer(spec: RunSpec, setup: JudgeSetup, settings: InnerSettings, evaluator: PanelEvaluator,
           recorder: RunRecorder, progress: Callable[[str], None], started: float,
           author: Author | None = None) -> OuterLoop:
    run = spec["run"]
    judge = Judge(setup.panels.validation, setup.panels.stage1(setup.thresholds.stage1_pairs),
                  setup.thresholds, setup.manifest.hash, evaluator,
                  setup.panels.confirmation if setup.panels.confirmation_instances else None)
    first = setup.benchmark.instances()[0]
    outer = OuterSettings(generations=run["generations"], candidates=run["candidates"], level15=run["level15"],
                          seed=run["seed"], wall_time_s=run["wall_time_s"] or None,
                          sequential_candidates=bool(spec["llm"]["sequential_candidates"]) and run["author"] == "llm")
    guard = LedgerGuard(spec, recorder)
    reports: dict[str, dict[str, Any]] = {}

    def check(source: str) -> dict[str, Any]:
        """The conformance check, shared by the LLM author's repairs and the outer loop (computed once)."""
        if source not in reports:
            reports[source] = check_conformance(source, limits=settings.limits).to_json()
        return reports[source]

    space = setup.benchmark.space(first)
    brief = author_brief(spec, setup, settings) if author is None and run["author"] == "llm" else None
    return OuterLoop(space=space, search_panel=setup.panels.search, judge=judge,
                     evaluator=evaluator, author=author or (make_author(run["author"]) if run["author"] != "llm" else make_author(
                         "llm", author_caller(spec, recorder, guard), check, spec["llm"]["author_repairs"], brief)),
                     library=builtin_library() + recorded_library(recorder.store, recorder.run_id),
                     budget_check=guard.reason,
                     settings=outer, recorder=recorder,
                     conformance=check,
                     baseline=Stack((), settings.search), progress=progress, started=started)


def _summarise(run_id: str, spec: RunSpec, setup: JudgeSetup, evaluator: PanelEvaluator, state: OuterState,
               recorder: RunRecorder, started: float, progress: Callable[[str], None]) -> Summary:
    judge = Judge(setup.panels.validation, (), setup.thresholds, setup.manifest.hash, evaluator)
    baseline = Stack((), inner_settings(spec).search)
    numbers = panel_numbers(judge, setup.panels, state.incumbent, baseline, state.generations_done, progress)
    fields: dict[str, Any] = {
        "run": run_id,
        "benchmark": spec["run"]["benchmark"],
        "author": spec["run"]["author"],
        "generations": state.generations_done,
        "candidates": state.candidates,
        "kept": state.kept,
        "stack": state.incumbent.describe(),
        **numbers,
        "failed_trials": failed_trials_line(failure_counts(recorder.store, run_id)),
        "score": f"{setup.benchmark.SCORE_TEXT}; improvement = baseline - kept",
        "manifest": setup.manifest.hash[:16],
        "stopped": state.stopped or "completed",
        "wall_s": f"{time.monotonic() - started:.1f}",
    }
    return Summary(fields)
