"""``[llm] inner = "model" | "numeric"`` (issue 12, item 2): recorded in the run, shown by ``show``,
``compare`` and ``ablate``; with "numeric" the model writes mechanisms and makes no inner call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bilevel.runs.cli import main
from bilevel.runs.store import Store

TINY = (Path(__file__).parent.parent / "data" / "tiny.toml").read_text()


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], inner: str) -> str:
    spec = tmp_path / f"{inner}.toml"
    spec.write_text(TINY + f'\n[llm]\ninner = "{inner}"\n')
    assert main(["run", "--spec", str(spec), "--store", str(tmp_path / "store"), "--model", "scripted:demo"]) == 0
    out = capsys.readouterr().out
    assert "stopped: completed" in out
    return out.splitlines()[0].split(": ", 1)[1]


@pytest.mark.slow
def test_numeric_inner_makes_no_inner_call_and_show_compare_ablate_say_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_run = _run(tmp_path, capsys, "model")
    numeric_run = _run(tmp_path, capsys, "numeric")
    store = Store.in_dir(tmp_path / "store")
    assert store.run(numeric_run).spec["llm"]["inner"] == "numeric"  # recorded in the run
    numeric, model = store.ledger(numeric_run), store.ledger(model_run)
    assert numeric.get("inner", {}).get("calls", 0) == 0  # the base proposer searched: zero inner calls
    assert numeric["author"]["calls"] > 0  # ... while the model wrote the mechanisms
    assert model["inner"]["calls"] > 0 and model["author"]["calls"] > 0
    sources = {row[3] for ev in store.evaluations(numeric_run) for row in ev["result"].get("trial_rows", [])}
    assert sources and not any("llm" in s for s in sources)  # no trial was proposed by the model

    assert main(["show", numeric_run, "--store", str(tmp_path / "store")]) == 0
    shown = capsys.readouterr().out
    assert "[llm] inner = numeric (the model writes mechanisms; the base strategy proposes)" in shown
    assert "inner: 0 calls" in shown
    assert main(["show", model_run, "--store", str(tmp_path / "store")]) == 0
    assert "[llm] inner = model (the model proposes in the inner loop too)" in capsys.readouterr().out

    assert main(["compare", model_run, numeric_run, "--store", str(tmp_path / "store")]) == 0
    compared = capsys.readouterr().out
    assert (f"[llm] inner differs: {model_run} = model (the model proposes in the inner loop too); "
            f"{numeric_run} = numeric") in compared

    spec = tmp_path / "ablate.toml"
    spec.write_text(TINY.replace("generations = 2", "generations = 1"))
    assert main(["ablate", "--spec", str(spec), "--model", "scripted:demo", "--repeats", "1",
                 "--groups", "C,numeric", "--store", str(tmp_path / "ab")]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("numeric "))
    assert "numeric inner proposer ([llm] inner)" in row
    ab = Store.in_dir(tmp_path / "ab")
    arms = {ev["group"]: run_id for run_id in ab.run_ids() for ev in ab.events(run_id, "ablation")}
    assert set(arms) == {"C", "numeric"}
    assert ab.run(arms["numeric"]).spec["llm"]["inner"] == "numeric"
    assert ab.ledger(arms["numeric"]).get("inner", {}).get("calls", 0) == 0
    assert ab.ledger(arms["C"])["inner"]["calls"] > 0


def test_ablate_refuses_the_numeric_arm_without_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ablate", "--groups", "C,numeric", "--store", str(tmp_path / "s")]) == 2
    assert "'numeric' needs --model" in capsys.readouterr().err
