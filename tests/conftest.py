from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilevel.inner.loop import DEFAULT_POOL

# Tests live in folders that mirror the packages (tests/<room>/); their shared helpers
# (llm_servers, proc_helpers) stay at tests/ and are imported by bare name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _close_idle_sandbox_workers() -> Iterator[None]:
    """Tests that count worker processes must not see workers kept idle by an earlier test."""
    DEFAULT_POOL.close()
    yield
    DEFAULT_POOL.close()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[object]:
    """One local Ray (2 CPUs, no dashboard) shared by every test that asks for it; started on first use."""
    import os

    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
