"""Executors: where the evaluations of a panel run (in the driver, a local process pool, or Ray).

An executor takes a batch of independent :class:`EvalTask` (one inner run of
one stack on one panel entry each) and yields ``(position, result json)``
pairs as tasks finish, in whatever order they finish. The driver owns the run
and the store: it records each result as it arrives (one INSERT, keyed by the
evaluation's content key), so a result is either recorded whole or not at all
and a re-run task can never be counted twice.

Every task is a pure function of its inputs (benchmark options, stack,
entry, inner settings): the inner loop is seeded from the entry's seed and
the sandbox worker runs with ``PYTHONHASHSEED=0``. So the same spec and seeds
give identical trials, verdicts and scores on every executor.

Kinds (``bilevel run --executor``):

- ``inprocess``: one task after the other in the driver's process (debugging,
  profiling, breakpoints).
- ``process`` (default): a pool of ``workers`` spawned processes; each keeps
  its sandbox workers between tasks (``inner.loop.DEFAULT_POOL``). One worker
  runs in the driver's process (no spawn cost). Pool processes die with the
  driver, however it dies (parent-death signal, ``sandbox.lifetime``). A pool process that dies
  mid-task breaks the pool; the pool is rebuilt and the tasks that were
  running are queued again. Which of them killed it is unknown, so they are
  re-run one at a time first: a task that kills its worker while running
  alone more than ``max_retries`` times ends the batch with an ExecutorError
  (resume the run once the cause is fixed).
- ``ray``: plain Ray remote tasks (``--address`` for an existing cluster,
  else a local Ray with ``workers`` CPUs). Each task supervises its own
  rlimited sandbox child (Ray workers are long-lived, so limits never go on
  the Ray worker itself). Ray re-runs a task whose worker or node died
  (``max_retries``); an exception raised by the task is not retried.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bilevel.outer.errors import OuterError
from bilevel.sandbox.lifetime import pool_initializer

DEFAULT_MAX_RETRIES = 2


class ExecutorKind(StrEnum):
    """The executors ``bilevel run --executor`` accepts."""

    INPROCESS = "inprocess"
    PROCESS = "process"
    RAY = "ray"


class ExecutorError(OuterError):
    """An executor could not be started or lost a task for good; the message says what to do."""


class Task(Protocol):
    """One unit of work: picklable, and a pure function of its fields. Called in a worker."""

    def __call__(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExecutorSpec:
    """How to build an executor: its kind, its parallelism, a Ray address, and the retry bound."""

    kind: ExecutorKind = ExecutorKind.PROCESS
    workers: int = 2
    address: str = ""
    max_retries: int = DEFAULT_MAX_RETRIES

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", ExecutorKind(self.kind))
        except ValueError:
            kinds = ", ".join(k.value for k in ExecutorKind)
            raise ExecutorError(f"unknown executor {self.kind!r}; executors: {kinds}") from None
        if self.workers < 1:
            raise ExecutorError(f"an executor needs at least one worker, got {self.workers}")
        if self.max_retries < 0:
            raise ExecutorError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.address and self.kind is not ExecutorKind.RAY:
            raise ExecutorError(f"--address is for the ray executor only (executor is {self.kind.value!r})")


class Executor(ABC):
    """Runs batches of tasks. ``run`` is called once per batch (a stack on a panel); ``close`` once
    when the run ends. Implementations start their workers lazily, on the first batch."""

    kind: ExecutorKind

    @abstractmethod
    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(index into tasks, result)`` for every task, each exactly once, as they finish."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers (called once, when the run ends or fails)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Runs each task in the calling process, in order."""

    kind = ExecutorKind.INPROCESS

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, task in enumerate(tasks):
            yield i, task()


def _call(task: Task) -> dict[str, Any]:
    """The function pool processes run (module level, so that spawn can pickle it)."""
    return task()


class ProcessExecutor(Executor):
    """A pool of ``workers`` spawned processes; a dead worker's tasks are queued again."""

    kind = ExecutorKind.PROCESS

    def __init__(self, workers: int, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.workers = workers
        self.max_retries = max_retries
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0  # pools rebuilt after a worker died (for tests and reports)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.workers == 1 or len(tasks) <= 1:
            yield from InProcessExecutor().run(tasks)
            return
        attempts = [0] * len(tasks)
        pending: dict[Future[dict[str, Any]], int] = {}
        queue = list(range(len(tasks)))
        suspects: set[int] = set()  # tasks that were running together when a pool broke
        while queue or pending:
            pool = self._ensure_pool()
            # one task per worker in flight; while there are suspects, one at a time, suspects first
            cap = 1 if suspects else self.workers
            while queue and len(pending) < cap:
                pick = next((q for q in queue if q in suspects), queue[0])
                queue.remove(pick)
                pending[pool.submit(_call, tasks[pick])] = pick
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost: list[int] = []
            for fut in done:
                i = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append(i)
                    continue
                suspects.discard(i)
                yield i, result
            if lost:
                # every other running task of the broken pool is lost too
                for fut, i in list(pending.items()):
                    if not fut.done() or isinstance(fut.exception(), BrokenProcessPool):
                        lost.append(i)
                        pending.pop(fut)
                self._drop_pool()
                if len(lost) == 1:  # it ran alone: it killed its worker
                    self._charge(lost[0], attempts)
                    suspects.discard(lost[0])
                else:
                    suspects.update(lost)
                queue[:0] = sorted(lost)

    def _charge(self, i: int, attempts: list[int]) -> None:
        attempts[i] += 1
        if attempts[i] > self.max_retries:
            raise ExecutorError(f"a pool worker died {attempts[i]} times while running task {i} alone; giving up "
                                f"(max_retries={self.max_retries}). Resume the run once the cause is fixed.")

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=pool_initializer, initargs=(os.getpid(),))
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self.restarts += 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor(Executor):
    """Plain Ray remote tasks. Connects to ``address`` if given, else starts a local Ray with
    ``workers`` CPUs; a Ray the caller already started (``ray.is_initialized()``) is reused and
    left running. Every node must have bilevel and its dependencies installed."""

    kind = ExecutorKind.RAY

    def __init__(self, workers: int, address: str = "", max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.workers = workers
        self.address = address
        self.max_retries = max_retries
        self._started_ray = False
        self._remote: Any = None

    def _ensure_ray(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError("the ray executor needs Ray: pip install 'bilevel[ray]'") from exc
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            try:
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    ray.init(num_cpus=self.workers, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise ExecutorError(f"cannot start or reach {where}: {exc}") from exc
            self._started_ray = True
        if self._remote is None:
            self._remote = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(_call)
        return ray

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, dict[str, Any]]]:
        if not tasks:
            return
        ray = self._ensure_ray()
        refs = {self._remote.remote(task): i for i, task in enumerate(tasks)}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                    raise ExecutorError(f"task {refs[ref]} lost its worker {self.max_retries + 1} times "
                                        f"(max_retries={self.max_retries}): {exc}") from exc
                yield refs[ref], result

    def close(self) -> None:
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        self._remote = None


def make_executor(spec: ExecutorSpec) -> Executor:
    """The executor ``spec`` names (workers start on its first batch)."""
    if spec.kind is ExecutorKind.INPROCESS:
        return InProcessExecutor()
    if spec.kind is ExecutorKind.PROCESS:
        return ProcessExecutor(spec.workers, spec.max_retries)
    return RayExecutor(spec.workers, spec.address, spec.max_retries)
