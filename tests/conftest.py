from __future__ import annotations

from collections.abc import Iterator

import pytest

from inner.loop import DEFAULT_POOL


@pytest.fixture(autouse=True)
def _close_idle_sandbox_workers() -> Iterator[None]:
    """Tests that count worker processes must not see workers kept idle by an earlier test."""
    DEFAULT_POOL.close()
    yield
    DEFAULT_POOL.close()
