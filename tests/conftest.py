from __future__ import annotations

from collections.abc import Iterator

import pytest

from bilevel.inner.loop import DEFAULT_POOL


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
