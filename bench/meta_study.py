"""Statistics of the meta-result study (``bench/meta_result.py``): tables and JSON over outer seeds.

Every interval here is a 95% bootstrap interval and says what it resampled: within one outer run, BBOB
functions, then instances, then seeds (``judge.stats.hierarchical_bootstrap_ci``); pooled over outer runs,
outer runs and functions independently (crossed: all runs share the sealed functions), then pairs. Differences are
"other method - kept stack" in log10 regret, so > 0 means the kept stack is better.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bilevel.judge.panels import PanelEntry
from bilevel.judge.stats import Interval, hierarchical_bootstrap_ci, sign_test

N_BOOT = 4000
TIE_TOL = 1e-9  # sign tests drop differences within this of 0 (ties: a run that kept nothing is the baseline)
KEPT = "kept stack"
BASELINE = "baseline inner loop"
TPE = "optuna TPE"


def by_function(values: np.ndarray, entries: list[PanelEntry]) -> Interval:
    """The mean of ``values`` (one per pair) with its interval resampled by function, then instance, then seed."""
    return hierarchical_bootstrap_ci(values, [e.group for e in entries], [e.instance for e in entries],
                                     0.95, N_BOOT, seed=0)


def function_sign_p(diffs: np.ndarray, entries: list[PanelEntry]) -> tuple[float, int, int]:
    """Exact sign test over the per-function mean differences: (p, functions > 0, functions used); functions
    whose mean difference is within ``TIE_TOL`` of 0 are ties, dropped (``len(functions) - used`` of them)."""
    means = np.array(list(function_means(diffs, entries).values()))
    test = sign_test(means, TIE_TOL)
    return test.p, int(np.sum(means > TIE_TOL)), test.n_used


def _sign(pos: int, used: int, total: int, p: float) -> str:
    """'pos/used, p=..', with the ties dropped said."""
    ties = f" ({total - used} tied, dropped)" if total > used else ""
    return f"{pos}/{used}{ties}, p={p:.3g}"


def _fmt(iv: Interval) -> str:
    return f"{iv.mean:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]"


def method_table(scores: dict[str, np.ndarray], extra: dict[str, tuple[float, float]],
                 seconds: dict[str, float], entries: list[PanelEntry]) -> list[str]:
    """One outer run's table: each method's mean and its difference to the kept stack."""
    ref = scores[KEPT]
    rows = ["| method | mean log10 regret [95% CI] | other - kept [95% CI] | kept wins (pairs) "
            "| functions kept better, sign p | auc | solved | s |", "|---|---|---|---|---|---|---|---|"]
    for name, vals in scores.items():
        own = by_function(vals, entries)
        if name == KEPT:
            diff, wins, sign = "-", "-", "-"
        else:
            d = vals - ref
            diff = _fmt(by_function(d, entries))
            wins = f"{np.mean(ref < vals):.0%} ({int(np.sum(ref < vals))}/{vals.size}, ties {int(np.sum(d == 0))})"
            p, pos, n = function_sign_p(d, entries)
            sign = _sign(pos, n, len({e.group for e in entries}), p)
        auc, solved = extra[name]
        rows.append(f"| {name} | {own.mean:.3f} [{own.low:.3f}, {own.high:.3f}] | {diff} | {wins} | {sign} "
                    f"| {auc:.3f} | {solved:.3f} | {seconds[name]:.0f} |")
    rows.append(f"(intervals: 95% cluster bootstrap, {N_BOOT} resamples, unit: {own.unit}: BBOB functions, then "
                f"instances, then seeds; exact sign test over per-function means, ties (|mean| <= {TIE_TOL:g}) "
                "dropped and counted)")
    return rows


def seed_result(run: dict[str, Any], scores: dict[str, np.ndarray], entries: list[PanelEntry]) -> dict[str, Any]:
    """One outer run's kept stack against every other method on the sealed split (plain JSON)."""
    ref = run["scores"]
    vs: dict[str, Any] = {}
    for name, vals in scores.items():
        if name == KEPT:
            continue
        d = vals - ref
        iv = by_function(d, entries)
        p, pos, n = function_sign_p(d, entries)
        vs[name] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "unit": iv.unit,
                    "kept_wins": int(np.sum(ref < vals)), "ties": int(np.sum(d == 0)), "pairs": int(d.size),
                    "functions_kept_better": pos, "functions_used": n, "sign_p": p}
    return {"seed": run["seed"], "salt": run["salt"], "split": run.get("split", "instance"), "run_id": run["run_id"],
            "kept": run["stack"].describe(), "run_summary": run.get("summary", {}),
            "kept_count": run["kept_count"], "kept_anything": bool(run["stack"].mechanisms) or bool(run["kept_count"]),
            "transfers": vs[BASELINE]["low"] > 0.0, "scores": ref.tolist(), "vs": vs}


def crossed_ci(diffs: np.ndarray, entries: list[PanelEntry], seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``diffs`` (outer run x pair) with a 95% bootstrap interval that resamples outer runs and
    functions independently (every run is scored on the same functions, so a function's difficulty is
    shared by all runs: nesting functions in runs would count it once per run), then pairs within each
    drawn function."""
    rng = np.random.default_rng(seed)
    groups = sorted({e.group for e in entries})
    cols = [np.array([j for j, e in enumerate(entries) if e.group == g]) for g in groups]
    runs = diffs.shape[0]
    means = np.empty(N_BOOT)
    for b in range(N_BOOT):
        rows = rng.integers(0, runs, runs)
        picked = np.concatenate([rng.choice(cols[f], cols[f].size) for f in rng.integers(0, len(groups), len(groups))])
        means[b] = diffs[np.ix_(rows, picked)].mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diffs.mean()), float(low), float(high)


def pooled(runs: list[dict[str, Any]], scores: dict[str, np.ndarray], entries: list[PanelEntry],
           name: str) -> dict[str, Any]:
    """``name`` - kept stack pooled over outer runs: the mean of the runs' means, interval from ``crossed_ci``."""
    mean, low, high = crossed_ci(np.array([scores[name] - r["scores"] for r in runs]), entries)
    seed_means = np.array([float(np.mean(scores[name] - r["scores"])) for r in runs])
    by_seed = sign_test(seed_means, TIE_TOL)
    groups = sorted({e.group for e in entries})
    mean_runs = np.mean([r["scores"] for r in runs], axis=0)
    p_f, pos_f, n_f = function_sign_p(scores[name] - mean_runs, entries)
    return {"mean": mean, "low": low, "high": high, "unit": "outer seed x function (crossed), then pair",
            "seeds_kept_better": int(np.sum(seed_means > TIE_TOL)), "seeds_used": by_seed.n_used,
            "seeds_tied": by_seed.n_dropped, "seed_sign_p": by_seed.p, "seed_means": seed_means.tolist(),
            "functions_kept_better": pos_f, "functions_used": n_f, "function_sign_p": p_f, "functions": len(groups)}


def study_summary(runs: list[dict[str, Any]], scores: dict[str, np.ndarray],
                  entries: list[PanelEntry]) -> dict[str, Any]:
    """The pooled study: how many runs kept something, how many transfer, and every method pooled."""
    per = [seed_result(r, scores, entries) for r in runs]
    return {"outer_seeds": [r["seed"] for r in runs], "runs_keeping": sum(p["kept_anything"] for p in per),
            "runs_transferring": sum(p["transfers"] for p in per),
            "pooled": {name: pooled(runs, scores, entries, name) for name in scores if name != KEPT}}


def study_rows(per_seed: list[dict[str, Any]], runs: list[dict[str, Any]], scores: dict[str, np.ndarray],
               entries: list[PanelEntry]) -> list[str]:
    """The study's tables: one row per outer run, then every method pooled over the runs."""
    names = [n for n in scores if n != KEPT]
    rows = [f"\nstudy over {len(runs)} outer seeds (other - kept, log10 regret, > 0: kept better; "
            "each cell 95% CI resampled by function):", "| outer seed | kept | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names)]
    for p in per_seed:
        cells = [f"{p['vs'][n]['mean']:+.3f} [{p['vs'][n]['low']:+.3f}, {p['vs'][n]['high']:+.3f}]" for n in names]
        rows.append(f"| {p['seed']} | {p['kept'].replace('|', '/')} | " + " | ".join(cells) + " |")
    summary = study_summary(runs, scores, entries)
    rows += ["", f"runs that kept something: {summary['runs_keeping']}/{len(runs)}; runs whose kept stack beats the "
             f"baseline inner loop with a function-resampled interval above 0: {summary['runs_transferring']}/{len(runs)}",
             "| pooled over outer seeds | other - kept [95% CI, outer seed x function crossed] | seeds kept better, sign p "
             "| functions kept better, sign p |", "|---|---|---|---|"]
    for n, s in summary["pooled"].items():
        rows.append(f"| {n} | {s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}] "
                    f"| {_sign(s['seeds_kept_better'], s['seeds_used'], len(runs), s['seed_sign_p'])} "
                    f"| {_sign(s['functions_kept_better'], s['functions_used'], s['functions'], s['function_sign_p'])} |")
    pooled = summary["pooled"]
    reached = all(pooled[m]["low"] > 0.0 for m in (BASELINE, TPE) if m in pooled)
    rows.append(f"\nissue 15's goal (pooled over the outer seeds, the kept stacks beat the baseline inner loop and "
                f"optuna TPE, each with its 95% interval above 0): {'reached' if reached else 'not reached'}")
    return rows


def run_rows(per_seed: list[dict[str, Any]]) -> list[str]:
    """Each outer run's own figures (its summary: the kept stack against the baseline on the run's confirmation
    or validation panel and its sealed test panel, on the run's functions), one row per outer seed."""
    rows = ["\neach outer run on its own panels (its summary block; improvement = baseline - kept, log10 regret; "
            "intervals as the summary prints them, with their unit):",
            "| outer seed | split | candidates | kept | stack | val (panel) [95% CI] unit, pairs "
            "| test [95% CI] unit, pairs | wall s |", "|---|---|---|---|---|---|---|---|"]
    for p in per_seed:
        s = p.get("run_summary", {})
        if not s:
            continue
        val = (f"{s.get('val_improvement', '?')} {s.get('val_ci', '')} {s.get('val_ci_unit', '')}, "
               f"{s.get('val_pairs', '?')} ({str(s.get('val_panel', 'confirmation')).split(' ')[0].rstrip(':')})")
        test = f"{s.get('test_improvement', '?')} {s.get('test_ci', '')} {s.get('test_ci_unit', '')}, {s.get('test_pairs', '?')}"
        rows.append(f"| {p['seed']} | {p.get('split', '?')} | {s.get('candidates', '?')} | {s.get('kept', '?')} "
                    f"| {str(s.get('stack', '?')).replace('|', '/')} | {val} | {test} | {s.get('wall_s', '?')} |")
    return rows


def function_means(diffs: np.ndarray, entries: list[PanelEntry]) -> dict[str, float]:
    """The mean of ``diffs`` over each sealed function's pairs, functions in BBOB order (f4 before f12)."""
    groups = sorted({e.group for e in entries}, key=lambda g: int(g.lstrip("f")) if g.lstrip("f").isdigit() else 0)
    return {g: float(diffs[[e.group == g for e in entries]].mean()) for g in groups}


def function_rows(scores: dict[str, np.ndarray], entries: list[PanelEntry]) -> list[str]:
    """Where the kept stack's difference comes from: per sealed function, each method's mean "other - kept" over
    that function's pairs; then each mean again without the function whose difference to the baseline inner
    loop is largest in size (a mean carried by one function is not a broad gain)."""
    ref = scores[KEPT]
    others = [n for n in scores if n != KEPT]
    means = {n: function_means(scores[n] - ref, entries) for n in others}
    groups = list(means[others[0]]) if others else []
    rows = ["\nper sealed function (outer seed of the table above; other - kept, mean over the function's pairs, "
            "> 0: kept better):", "| function | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for g in groups:
        rows.append(f"| {g} | " + " | ".join(f"{means[n][g]:+.3f}" for n in others) + " |")
    base = scores[BASELINE] - ref if BASELINE in scores else None
    if base is None or not np.any(np.abs(base) > TIE_TOL):
        return rows
    top = max(groups, key=lambda g: abs(means[BASELINE][g]))
    keep = np.array([e.group != top for e in entries])
    rest = [e for e, k in zip(entries, keep, strict=True) if k]
    cells = [f"{n} {_fmt(by_function((scores[n] - ref)[keep], rest))}" for n in others]
    rows.append(f"without {top} (the function with the largest difference to the baseline inner loop), "
                f"other - kept [95% CI by function]: " + "; ".join(cells))
    return rows
