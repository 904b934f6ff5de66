"""The HTML report renders in a real headless browser (Chromium) from disk, with every plot drawn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.report import PLOT_IDS
from bilevel.runs.store import Store

SPEC = Path(__file__).parent / "data" / "tiny.toml"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")
    return found


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    browser = _chromium()
    store = tmp_path / "store"
    assert main(["run", "--spec", str(SPEC), "--store", str(store)]) == 0
    run_id = Store.in_dir(store).run_ids()[0]
    page = tmp_path / "report.html"
    assert main(["report", run_id, "--store", str(store), "--out", str(page)]) == 0
    profile = tmp_path / "profile"
    proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert f"bilevel run {run_id}" in dom, proc.stderr[-2000:]
    rendered = re.search(r'data-plots-rendered="(\d+)"', dom)
    assert rendered, "the page's load script did not run"
    assert int(rendered.group(1)) == len(PLOT_IDS)  # every plot decoded to a non-empty image
    for plot in PLOT_IDS:
        assert f'id="plot-{plot}"' in dom
