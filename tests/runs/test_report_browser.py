"""The HTML report renders in a real headless browser (Chromium) from disk, with every plot drawn, nothing
wider than the page, and a screenshot kept (in the test's folder, and in $BILEVEL_ARTIFACTS when set)."""

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

SPEC = Path(__file__).parent.parent / "data" / "tiny.toml"
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
    proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert f"bilevel run {run_id}" in dom, proc.stderr[-2000:]
    rendered = re.search(r'data-plots-rendered="(\d+)"', dom)
    assert rendered, "the page's load script did not run"
    assert int(rendered.group(1)) == len(PLOT_IDS)  # every plot decoded to a non-empty image
    for plot in PLOT_IDS:
        assert f'id="plot-{plot}"' in dom
    overflow = re.search(r'data-overflow="([^"]*)"', dom)
    assert overflow and overflow.group(1) == "none", f"wider than the page: {overflow and overflow.group(1)}"
    width = re.search(r'data-page-width="(\d+)/(\d+)"', dom)
    assert width and int(width.group(1)) <= int(width.group(2))  # no horizontal scroll
    shot = tmp_path / "report.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1000,4000",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("BILEVEL_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
