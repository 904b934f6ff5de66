"""``bilevel report RUN``: one self-contained HTML page with plots (matplotlib, PNG inlined as data URIs).

Sections: the summary; best-so-far curves of the baseline and every kept
stack on the sealed test panel; per-generation gains with their intervals;
the lineage tree; the cost ledger; the validation-vs-test gap (how much of
what the judge saw on validation holds on sealed data); the RSI metrics; and,
when asked for, the final stack's transfer to another benchmark.
The page needs no server and no network: open it from disk. The test-panel
evaluations are cached in the run, so a second report is instant.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bilevel.judge.benchmarks import get_benchmark
from bilevel.judge.evaluate import Comparison, EvalResult
from bilevel.judge.stack import Stack
from bilevel.runs.history import RunHistory, load_history, test_bench
from bilevel.runs.ledger import Ledger, ledger
from bilevel.runs.lineage import Node, nodes, tree_lines
from bilevel.runs.replay_stack import ReplayResult
from bilevel.runs.rsi import rsi_metrics
from bilevel.runs.store import Store
from bilevel.runs.views import last_summary

PLOT_IDS = ("best-so-far", "generation-gains", "lineage-tree", "val-test-gap")


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


BAND_BOOT = 400  # resamples of the curves' bands (cluster bootstrap over groups)


def score_curves(curves: dict[str, list[EvalResult]], to_score: Callable[[float], float]) -> dict[str, np.ndarray]:
    """Mean best-so-far per trial over the panel's pairs, on the primary score's scale (``to_score`` is the
    benchmark's ``curve_value``), so the last point of each curve is the mean score the judge compares."""
    return {label: band[0] for label, band in curve_bands(curves, to_score).items()}


def curve_bands(curves: dict[str, list[EvalResult]], to_score: Callable[[float], float],
                confidence: float = 0.95, n_boot: int = BAND_BOOT,
                ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per curve: (mean, low, high) per trial. The band is the percentile interval of the mean from a
    cluster bootstrap that resamples the panel's groups (the independent units), each with all its pairs;
    with a single group it resamples pairs. Seeded, so a report is reproducible."""
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for label, runs in curves.items():
        kept = [r for r in runs if r.best_so_far]
        if not kept:
            continue
        length = min(len(r.best_so_far) for r in kept)
        rows = np.array([[to_score(v) for v in r.best_so_far[:length]] for r in kept], dtype=float)
        units = [r.group for r in kept] if len({r.group for r in kept}) > 1 else [str(i) for i in range(len(kept))]
        names = sorted(set(units))
        sums = np.array([rows[[u == n for u in units]].sum(axis=0) for n in names])
        counts = np.array([units.count(n) for n in names], dtype=float)
        rng = np.random.default_rng(0)
        draws = rng.integers(0, len(names), size=(n_boot, len(names)))
        boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)[:, None]
        alpha = (1 - confidence) / 2
        out[label] = (rows.mean(axis=0), np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0))
    return out


def band_unit(results: dict[str, list[EvalResult]]) -> str:
    """What the curves' bands resample: ``groups`` or ``pairs`` (one group)."""
    groups = {r.group for runs in results.values() for r in runs}
    return "groups" if len(groups) > 1 else "pairs"


def _plot_curves(bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], score_text: str, unit: str) -> str:
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    for label, (y, low, high) in bands.items():
        x = np.arange(1, len(y) + 1)
        line = ax.plot(x, y, label=label, lw=2 if label.startswith("baseline") else 1.3)[0]
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xlabel("trial")
    ax.set_ylabel("mean best-so-far score\n(" + score_text.split(" (")[0].split(",")[0][:48] + ")", fontsize=8)
    ax.set_title(f"best-so-far on the sealed test panel: mean over pairs, band 95% CI resampling {unit}",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def _plot_gains(curve: list[tuple[int, Comparison]], val: dict[int, float]) -> str:
    fig = Figure(figsize=(7, 3.4))
    ax = fig.add_subplot()
    if curve:
        gens = [g for g, _ in curve]
        mean = np.array([c.mean for _, c in curve])
        err = np.array([[c.mean - c.ci_low for _, c in curve], [c.ci_high - c.mean for _, c in curve]])
        ax.errorbar(gens, mean, yerr=err, fmt="o-", capsize=4, label="test: incumbent vs baseline (95% CI)")
        vg = [g for g in gens if g in val]
        if vg:
            ax.plot(vg, [val[g] for g in vg], "s", color="tab:orange", label="validation gain of the kept candidate")
    ax.axhline(0, color="grey", lw=0.8)
    _generation_axis(ax, [g for g, _ in curve])
    ax.set_ylabel("improvement over baseline")
    ax.set_title("per-generation gains")
    if curve:
        ax.legend(fontsize=7)
    return _png(fig)


def _generation_axis(ax: Any, generations: list[int]) -> None:
    """Ticks g0, g1, ... at the generations shown (the one numbering used everywhere)."""
    if generations:
        ax.set_xticks(generations, [f"g{g}" for g in generations])
        ax.set_xlim(min(generations) - 0.5, max(generations) + 0.5)
    ax.set_xlabel("generation")


def _plot_lineage(ns: list[Node]) -> str:
    """Each judged candidate at its generation, its validation improvement over the incumbent it was
    derived from with the verdict's interval, coloured by verdict; kept ones are labelled."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    colours = {"KEPT": "tab:green", "passed (a better candidate was kept)": "yellowgreen", "rejected": "tab:red",
               "pending": "tab:grey"}
    for mark, colour in colours.items():
        pts = [n for n in ns if n.mark == mark and not math.isnan(n.mean)]
        if not pts:
            continue
        x = [n.generation + 0.08 * (n.index - 2) for n in pts]
        y = [n.mean for n in pts]
        err = [[n.mean - n.ci_low for n in pts], [n.ci_high - n.mean for n in pts]]
        ax.errorbar(x, y, yerr=err, fmt="o", color=colour, ecolor=colour, alpha=0.85, capsize=2, ms=5,
                    label=mark)
    for n in ns:
        if n.adopted and not math.isnan(n.mean):
            ax.annotate(n.describe.split(" | ")[0], (n.generation, n.mean), fontsize=7, xytext=(6, 6),
                        textcoords="offset points", annotation_clip=False)
    ax.axhline(0, color="grey", lw=0.8)
    _generation_axis(ax, sorted({n.generation for n in ns}))
    ax.set_ylabel("validation improvement over\nthe incumbent (95% CI)", fontsize=8)
    ax.set_title("lineage: every judged candidate (the tree with full reasons is below)", fontsize=9)
    if any(not math.isnan(n.mean) for n in ns):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no candidate was judged on pairs", ha="center", transform=ax.transAxes)
    return _png(fig)


def _plot_gap(rows: list[tuple[str, float, Comparison]], val_ci: dict[str, tuple[float, float]]) -> str:
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    if rows:
        x = np.arange(len(rows))
        lows = [val_ci.get(r[0], (r[1], r[1]))[0] for r in rows]
        highs = [val_ci.get(r[0], (r[1], r[1]))[1] for r in rows]
        ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="validation (what the judge saw), 95% CI",
               yerr=[[r[1] - lo for r, lo in zip(rows, lows, strict=True)],
                     [hi - r[1] for r, hi in zip(rows, highs, strict=True)]], capsize=3)
        test = [r[2] for r in rows]
        ax.bar(x + 0.2, [c.mean for c in test], 0.4, label="sealed test, 95% CI",
               yerr=[[c.mean - c.ci_low for c in test], [c.ci_high - c.mean for c in test]], capsize=3)
        ax.set_xticks(x, [r[0] for r in rows], fontsize=7, rotation=12, ha="right")
    else:
        ax.text(0.5, 0.5, "no stack was kept", ha="center", transform=ax.transAxes)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("improvement over the stack it replaced / baseline")
    ax.set_title("validation vs test gap")
    if rows:
        ax.legend(fontsize=7)
    return _png(fig)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.4f}"


_STYLE = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
          "pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}"
          "img{max-width:100%}table{max-width:100%}td{overflow-wrap:anywhere}")
_SCRIPT = ("window.addEventListener('load',function(){var n=0;document.querySelectorAll('img.plot')"
           ".forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});"
           "document.body.setAttribute('data-plots-rendered',String(n));"
           # what sticks out past the page's width (the browser test wants none)
           "var w=document.documentElement.clientWidth,bad=[];document.querySelectorAll('body *')"
           ".forEach(function(e){var r=e.getBoundingClientRect();if(r.right>w+1)bad.push(e.tagName+"
           "(e.id?'#'+e.id:''));});document.body.setAttribute('data-overflow',bad.length?bad.slice(0,10)"
           ".join(' '):'none');document.body.setAttribute('data-page-width',"
           "document.documentElement.scrollWidth+'/'+w);});")


def build_report(store: Store, run_id: str, progress: Callable[[str], None] = lambda _m: None,
                 on_eval: Callable[[int, int], None] | None = None, transfer: ReplayResult | None = None) -> str:
    """The HTML page (called by ``bilevel report``); evaluates kept stacks on the test panel if not cached."""
    history = load_history(store, run_id)
    kept = history.kept_stacks()
    with test_bench(store, run_id, on_eval=on_eval) as bench:
        progress(f"test panel: baseline and {len(kept)} kept stacks on {len(bench.panel)} pairs")
        stacks: list[tuple[str, Stack]] = [("baseline", history.baseline)]
        stacks += [(f"g{g}: {_names(s)} [{s.key[:8]}]", s) for g, s in kept]
        results = {label: bench.results(s) for label, s in stacks}
        curve = [(g.index, bench.compare(g.incumbent, history.baseline)) for g in history.generations]
        gap = _gap_rows(history, kept, bench.compare)
    return _page(store, history, results, curve, gap, ledger(store, run_id), transfer)


def _names(stack: Stack) -> str:
    """A stack's mechanism names for legends and labels (its search config when it has none)."""
    return " + ".join(m.name for m in stack.mechanisms) or stack.describe()


def _gap_rows(history: RunHistory, kept: list[tuple[int, Stack]],
              compare: Callable[[Stack, Stack], Comparison]) -> list[tuple[str, float, Comparison]]:
    """Per kept stack: the validation gain the judge measured and the same comparison on the test panel."""
    rows = []
    previous = history.baseline
    for g, stack in kept:
        v = [x for x in history.verdicts if x["generation"] == g and x["stack_key"] == stack.key and x["keep"]]
        val = float(v[0]["mean_improvement"]) if v else math.nan
        rows.append((f"g{g}: {_names(stack)}", val, compare(stack, previous)))
        previous = stack
    return rows


def _kept_labels(history: RunHistory) -> list[tuple[str, Stack]]:
    return [(f"g{g}: {_names(s)}", s) for g, s in history.kept_stacks()]


def _page(store: Store, history: RunHistory, results: dict[str, list[EvalResult]],
          curve: list[tuple[int, Comparison]], gap: list[tuple[str, float, Comparison]], led: Ledger,
          transfer: ReplayResult | None = None) -> str:
    run_id = history.run_id
    bench = get_benchmark(history.benchmark, history.spec["benchmark"])
    ns = nodes(store, history)
    summary = last_summary(store, run_id) or {"status": "not finished"}
    val_gain = {n.generation: n.mean for n in ns if n.adopted}
    by_label = {lab: stack for lab, stack in _kept_labels(history)}
    val_ci = {lab: (n.ci_low, n.ci_high) for n in ns if n.adopted
              for lab, stack in by_label.items() if stack.key == n.key and lab.startswith(f"g{n.generation}:")}
    unit = band_unit(results)
    plots = {
        "best-so-far": _plot_curves(curve_bands(results, bench.curve_value), bench.SCORE_TEXT, unit),
        "generation-gains": _plot_gains(curve, val_gain),
        "lineage-tree": _plot_lineage(ns),
        "val-test-gap": _plot_gap(gap, val_ci),
    }
    img = {k: f'<img class="plot" id="plot-{k}" alt="{k}" src="{v}">' for k, v in plots.items()}
    rsi = rsi_metrics(store, run_id, history)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bilevel report {html.escape(run_id)}</title>"
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>",
        f"<h1>bilevel run {html.escape(run_id)}</h1>",
        f"<p>benchmark <b>{html.escape(history.benchmark)}</b>, author <b>{html.escape(history.author)}</b>, "
        f"judge manifest <code>{history.manifest_hash[:16]}</code>. Improvement = baseline score - stack score "
        "(positive is better), paired by instance and seed; intervals are 95% cluster bootstrap intervals "
        "(resampling groups, then instances, then seeds; the curves' bands resample groups).</p>",
        "<h2 id='summary'>Summary</h2>", _table(["key", "value"], [[k, v] for k, v in summary.items()]),
        "<h2 id='best-so-far'>Best-so-far on the sealed test panel</h2>", img["best-so-far"],
        "<h2 id='gains'>Per-generation gains</h2>", img["generation-gains"],
        _table(["generation", "test improvement", "ci low", "ci high", "pairs"],
               [[f"g{g}", _fmt(c.mean), _fmt(c.ci_low), _fmt(c.ci_high), c.n_pairs] for g, c in curve]),
        "<h2 id='lineage'>Lineage</h2>", img["lineage-tree"],
        "<pre class='tree'>" + html.escape("\n".join(tree_lines(store, run_id))) + "</pre>",
        "<h2 id='ledger'>Cost ledger</h2>",
        _table(["level", "LLM calls", "tokens", "dollars"],
               [[lv, n, t, f"{d:.4f}"] for lv, n, t, d in led.rows()]),
        f"<p>inner runs: {led.inner_runs}, trials: {led.trials}"
        + (" (offline author: no model calls)" if led.tokens == 0 else "") + "</p>",
        "<h2 id='gap'>Validation vs test gap</h2>", img["val-test-gap"],
        _table(["kept stack", "validation gain", "test gain", "test ci", "held on test"],
               [[lab, _fmt(v), _fmt(c.mean), f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]",
                 f"{c.mean / v:.0%}" if v and not math.isnan(v) else "n/a"] for lab, v, c in gap]),
        "<h2 id='rsi'>RSI metrics</h2>", "<pre>" + html.escape("\n".join(rsi.lines())) + "</pre>",
        _transfer_section(transfer),
        "</body></html>",
    ]
    return "\n".join(parts)


def _transfer_section(t: ReplayResult | None) -> str:
    if t is None:
        return ("<h2 id='transfer'>Transfer to another benchmark</h2><p>not measured (bilevel report RUN "
                "--transfer BENCHMARK, or bilevel replay RUN --stack --benchmark BENCHMARK)</p>")
    return (f"<h2 id='transfer'>Transfer to {html.escape(t.benchmark)}</h2>"
            + _table(["stack", "pairs", "improvement", "95% CI", "sign-test p", "wins"],
                     [[t.stack, len(t.pairs), _fmt(t.mean), f"[{_fmt(t.ci_low)}, {_fmt(t.ci_high)}]",
                       f"{t.p_sign:.3g}", f"{t.wins}/{len(t.pairs)}"]]))


def write_report(store: Store, run_id: str, path: Path, progress: Callable[[str], None] = lambda _m: None,
                 on_eval: Callable[[int, int], None] | None = None, transfer: ReplayResult | None = None) -> Path:
    """Write the page to ``path`` (called by ``bilevel report``)."""
    Path(path).write_text(build_report(store, run_id, progress, on_eval, transfer), encoding="utf-8")
    return Path(path)
