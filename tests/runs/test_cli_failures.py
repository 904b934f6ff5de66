"""Broken benchmarks fail loudly (issue 13): the pre-flight trial, panel sizes, failed trials counted, a
baseline that cannot run, and the python benchmark's long-lived child with its faults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from user_specs import TINY, TRAIN_SCRIPT

from bilevel.inner.objective import ObjectiveError
from bilevel.judge.benchmarks import get_benchmark
from bilevel.runs.cli import main

DATA = Path(__file__).parent.parent / "data"

def _spec(folder: Path, benchmark: str, options: str) -> Path:
    path = folder / "spec.toml"
    path.write_text(TINY.format(benchmark=benchmark, options=options), encoding="utf-8")
    return path


def _run(spec: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["run", "--spec", str(spec), "--store", str(store)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("options, cause", [
    ('command = "python train.py"', "can't open file"),  # the README's example without its script
    (f'callable = "bench_callable:quadratc"\npythonpath = ["{DATA}"]', "has no attribute 'quadratc'"),
    ('callable = "bench_callable:quadratic"\npythonpath = ["/nonexistent/src"]', "No module named 'bench_callable'"),
])
def test_a_broken_benchmark_exits_2_before_a_run_exists(tmp_path: Path, options: str, cause: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    benchmark = "command" if options.startswith("command") else "python"
    code, out, err = _run(_spec(tmp_path, benchmark, options), tmp_path / "store", capsys)
    assert code == 2 and "run:" not in out
    assert "pre-flight trial failed" in err and cause in err and "fix:" in err
    assert not (tmp_path / "store").exists()  # nothing was recorded, not even an empty store


def test_workdir_defaults_to_the_spec_files_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT, encoding="utf-8")
    spec = _spec(tmp_path, "command", 'command = "python train.py"')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)  # the command runs in the spec's folder, not the current one
    try:
        code, out, err = _run(spec, tmp_path / "store", capsys)
    finally:
        os.chdir(cwd)
    assert code == 0, err
    assert "failed_trials: 0 of " in out and "stopped: completed" in out


def test_panel_sizes_that_do_not_fit_name_the_keys_and_suggest_sizes(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, "python", f'callable = "bench_callable:plain"\npythonpath = ["{DATA}"]')
    spec.write_text(spec.read_text().replace("validation_instances = 2", "validation_instances = 5"))
    code, _out, err = _run(spec, tmp_path / "store", capsys)
    assert code == 2
    assert "has 4 instances but the panels need 7" in err
    assert "[panels] search_instances = 1, validation_instances = 5, test_instances = 1" in err
    assert "e.g. search_instances = 1, validation_instances = 2, test_instances = 1" in err


def test_a_baseline_that_fails_every_trial_stops_the_run_with_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    spec = _spec(tmp_path, "python", f'callable = "bench_faulty:fails_after_first"\npythonpath = ["{DATA}"]\n'
                                     f'workdir = "{work}"')
    code, out, err = _run(spec, tmp_path / "store", capsys)
    assert code == 2
    assert "the baseline failed every trial" in err and "the data set vanished" in err
    assert "stopped: completed" not in out and "--- summary ---" not in out
    run_id = out.split("run: ")[1].split()[0]
    assert main(["runs", "--store", str(tmp_path / "store")]) == 0
    listing = capsys.readouterr().out
    assert f"{run_id}\t" in listing and "failed: the baseline failed every trial" in listing
    assert main(["show", run_id, "--store", str(tmp_path / "store")]) == 0
    shown = capsys.readouterr().out
    assert "status: failed: the baseline failed" in shown and "failed_trials: 8 of 8 trials" in shown


def test_failed_trials_are_counted_in_the_summary_show_and_runs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, "python", f'callable = "bench_faulty:fails_on_odd_seeds"\npythonpath = ["{DATA}"]')
    code, out, err = _run(spec, tmp_path / "store", capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("failed_trials: "))
    failed, total = int(line.split()[1]), int(line.split()[3])
    assert 0 < failed < total and "per stack:" in line and "odd seed" in line
    assert "failed trials:" in err  # the progress line
    run_id = out.split("run: ")[1].split()[0]
    main(["runs", "--store", str(tmp_path / "store")])
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith(run_id))
    assert row.split("\t")[-1] == f"{failed}/{total}"
    main(["show", run_id, "--store", str(tmp_path / "store")])
    assert line in capsys.readouterr().out


def _python(name: str, module: str = "bench_faulty", timeout_s: float = 20.0) -> object:
    bench = get_benchmark("python", {"callable": f"{module}:{name}", "params": ["x:float:0:1"],
                                     "pythonpath": [str(DATA)], "timeout_s": timeout_s})
    return bench.objective(bench.instances()[0], 0)


def test_the_python_child_lives_on_and_prints_do_not_corrupt_it() -> None:
    pid = _python("pid", timeout_s=20.0)
    first = pid.evaluate({"x": 0.1})  # type: ignore[attr-defined]
    assert pid.evaluate({"x": 0.2}) == first and first != os.getpid()  # type: ignore[attr-defined]
    assert _python("chatty").evaluate({"x": 0.25}) == 0.25  # type: ignore[attr-defined]


def test_the_python_child_fails_one_trial_on_an_exception_a_crash_or_a_timeout() -> None:
    raises = _python("raises_above")
    with pytest.raises(ObjectiveError, match="ValueError: x too large"):
        raises.evaluate({"x": 0.95})  # type: ignore[attr-defined]
    assert raises.evaluate({"x": 0.5}) == 0.5  # type: ignore[attr-defined]
    dies = _python("dies_above")
    with pytest.raises(ObjectiveError, match="exited with status 7"):
        dies.evaluate({"x": 0.95})  # type: ignore[attr-defined]
    assert dies.evaluate({"x": 0.5}) == 0.5  # type: ignore[attr-defined]  # a fresh child
    slow = _python("slow_above", timeout_s=1.0)
    with pytest.raises(ObjectiveError, match="timed out after 1 s"):
        slow.evaluate({"x": 0.95})  # type: ignore[attr-defined]
    assert slow.evaluate({"x": 0.5}) == 0.5  # type: ignore[attr-defined]


@pytest.mark.slow
def test_sigterm_leaves_no_python_benchmark_child_behind(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from test_cli_habits import _descendants_or_group, _evaluations

    spec = _spec(tmp_path, "python", f'callable = "bench_faulty:slow"\npythonpath = ["{DATA}"]')
    # 20 trials of 0.2 s per inner run: the run is still going long after its first evaluation is recorded
    spec.write_text(spec.read_text().replace('executor = "inprocess"', 'executor = "process"')
                    .replace("workers = 1", "workers = 2").replace("budget = 4", "budget = 20"))
    proc = subprocess.Popen([sys.executable, "-m", "bilevel.runs.cli", "run", "--spec", str(spec), "--store",
                             str(tmp_path / "s")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while _evaluations(tmp_path / "s" / "bilevel.sqlite") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    children = _descendants_or_group(proc.pid)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children if Path(f"/proc/{pid}").exists()]
    assert any(b"pyrunner.py\x00--serve" in c for c in commands)  # the long-lived python child is running
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "bilevel resume" in err
    time.sleep(5)
    assert _descendants_or_group(proc.pid) == []
    assert all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
               for pid in children)


def test_preflight_can_be_switched_off_and_the_run_then_stops_on_its_baseline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, "command", 'command = "python train.py"')
    spec.write_text(spec.read_text().replace("[run]\n", "[run]\npreflight = false\n"), encoding="utf-8")
    code, out, err = _run(spec, tmp_path / "store", capsys)
    assert code == 2 and "pre-flight" not in err and out.startswith("run: ")
    assert "the baseline failed every trial" in err and "can't open file" in err
