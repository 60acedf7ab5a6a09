"""Aggregate benchmark records into benchmarks/RESULTS.md and PNG figures.

    python benchmarks/report.py                      # benchmarks/results/*.json
    python benchmarks/report.py --results-dir /tmp/smoke --out /tmp/smoke/RESULTS.md

Every number in the report comes from a record written by
`benchmarks/run.py` (mean ± sample std over seeds; records are read and
aggregated by `benchmarks/records.py`); the paper numbers are constants
below, with their source. Sections follow the suite files
(`benchmarks/suites/*.yaml`: `report.section`, `report.order`, and for
table sections the title, notes and columns). A suite without a record is
reported as not run.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records  # noqa: E402  (benchmarks/records.py)
import suites as suite_files  # noqa: E402  (benchmarks/suites.py)

# Test AUC from the papers. MMoE: Ma et al., KDD 2018, Tables 3 and 4 (best
# and mean over 400 runs of random hyper-parameters... as reported there;
# "best" = the best run, "mean" = the average). PLE: Tang et al., RecSys
# 2020, Table 5 (one number per task; we set it beside our best and mean).
PAPER = {
    "census_g1": {
        "source": "MMoE paper (Ma et al., KDD 2018) Table 3; PLE row from the PLE "
                  "paper (Tang et al., RecSys 2020) Table 5",
        "tasks": ("income", "marital"),
        "models": {
            "SingleTask": {"income": (0.9398, 0.9337), "marital": (None, 0.9922)},
            "SharedBottom": {"income": (0.9361, 0.9295), "marital": (None, 0.9921)},
            "OMoE": {"income": (0.9387, 0.9319), "marital": (None, 0.9923)},
            "MMoE": {"income": (0.9410, 0.9359), "marital": (None, 0.9927)},
            "PLE": {"income": (0.9522, None), "marital": (None, 0.9945)},
        },
    },
    "census_g2": {
        "source": "MMoE paper (Ma et al., KDD 2018) Table 4",
        "tasks": ("education", "marital"),
        "models": {
            "SingleTask": {"education": (0.8843, 0.8792), "marital": (None, 0.9922)},
            "SharedBottom": {"education": (0.8836, 0.8813), "marital": (None, 0.9917)},
            "OMoE": {"education": (0.8852, 0.8813), "marital": (None, 0.9912)},
            "MMoE": {"education": (0.8860, 0.8826), "marital": (None, 0.9924)},
        },
    },
}


def _models_in(stats):
    return records.rows_in(stats)


def _fmt(value, digits=4):
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _gap(ours, paper):
    return "—" if ours is None or paper is None else f"{ours - paper:+.4f}"


def _hms(seconds):
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" \
        if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _provenance(record):
    commits = sorted({(r.get("git") or {}).get("commit") or "unknown"
                      for r in record["runs"]})
    dirty = any((r.get("git") or {}).get("dirty") for r in record["runs"])
    versions = record["runs"][0].get("versions") or {} if record["runs"] else {}
    return commits, dirty, versions


def census_section(suite, record, figures_dir, rel_figures):
    lines = []
    paper = PAPER[suite]
    tasks = paper["tasks"]
    title = {"census_g1": "Census-Income group 1 (income, marital)",
             "census_g2": "Census-Income group 2 (education, marital)"}[suite]
    lines.append(f"## {title}\n")
    if record is None or not record.get("runs"):
        lines.append(f"**Not run**: no record `benchmarks/results/{suite}.json`. "
                     f"Run `python benchmarks/run.py --suite {suite}`.\n")
        return lines
    stats = records.aggregate(record)
    seeds = sorted({r["seed"] for r in record["runs"]})
    corr = record.get("label_correlation", {}).get("all", {}).get("pearson", {})
    lines.append(f"Test AUC, mean ± sample std over seeds {seeds} "
                 f"({len(record['runs'])} runs); `best` is the best seed. Paper: "
                 f"{paper['source']}. Gap = ours − paper (mean vs mean, best vs "
                 f"best).")
    if corr:
        lines.append("Label correlation (Pearson, training split, measured): "
                     + ", ".join(f"{k} = {v:+.4f}" for k, v in corr.items()) + ".")
    lines.append("")
    a, b = tasks
    header = (f"| model | params | seeds | epochs (best) | {a} AUC mean ± std | {a} best "
              f"| paper {a} best / mean | gap best / mean | {b} AUC mean ± std "
              f"| paper {b} mean | gap mean | train s/run |")
    lines += [header, "|---|---:|---:|---|---|---|---|---|---|---|---|---:|"]
    for model in _models_in(stats):
        entry = stats[(model, None)]
        p = paper["models"].get(model, {})
        sa, sb = entry["tasks"].get(a, {}).get("auc"), entry["tasks"].get(b, {}).get("auc")
        pa_best, pa_mean = p.get(a, (None, None))
        _, pb_mean = p.get(b, (None, None))
        runs = [r for r in record["runs"] if r["name"] == model]
        epochs = ", ".join(f"{r['epochs_run']}({r['best_epoch'] or '-'})" for r in runs)
        train_s = sum(r["train_seconds"] for r in runs) / len(runs)
        lines.append(
            f"| {model} | {entry['parameters']:,} | {entry['n']} | {epochs} | "
            f"{_fmt(sa and sa['mean'])} ± {_fmt(sa and sa['std'])} | "
            f"{_fmt(sa and sa['max'])} | {_fmt(pa_best)} / {_fmt(pa_mean)} | "
            f"{_gap(sa and sa['max'], pa_best)} / {_gap(sa and sa['mean'], pa_mean)} | "
            f"{_fmt(sb and sb['mean'])} ± {_fmt(sb and sb['std'])} | {_fmt(pb_mean)} | "
            f"{_gap(sb and sb['mean'], pb_mean)} | {train_s:.0f} |")
    base_stats = records.aggregate({"runs": records.baseline_runs(record)})
    for row in _models_in(base_stats):
        entry = base_stats[(row, None)]
        sa, sb = entry["tasks"].get(a, {}).get("auc"), entry["tasks"].get(b, {}).get("auc")
        runs = [r for r in records.baseline_runs(record) if r["name"] == row]
        trees = ", ".join("/".join(str(r["iterations"][t]["chosen"]) for t in tasks)
                          for r in runs)
        train_s = sum(r["train_seconds"] for r in runs) / len(runs)
        lines.append(
            f"| {row} | — | {entry['n']} | {trees} trees | "
            f"{_fmt(sa and sa['mean'])} ± {_fmt(sa and sa['std'])} | "
            f"{_fmt(sa and sa['max'])} | — / — | — / — | "
            f"{_fmt(sb and sb['mean'])} ± {_fmt(sb and sb['std'])} | — | — | {train_s:.0f} |")
    lines.append("")
    for task in tasks:
        ranked = sorted(((stats[(m, None)]["tasks"][task]["auc"]["mean"], m)
                         for m in _models_in(stats)
                         if "auc" in stats[(m, None)]["tasks"].get(task, {})),
                        reverse=True)
        lines.append(f"- {task}, by mean test AUC (highest first): "
                     + " > ".join(f"{m} ({v:.4f})" for v, m in ranked) + ".")
    runs = record["runs"]
    last = sum(1 for r in runs if r.get("best_epoch") == r.get("epochs_run"))
    last2 = sum(1 for r in runs if (r.get("best_epoch") or 0) >= r.get("epochs_run", 0) - 1)
    budget = sorted({r["config"]["training"]["epochs"] for r in runs})
    patience = runs[0]["config"]["training"]["early_stopping"]["patience"]
    lines.append(f"- Best validation epoch: the last epoch run in {last} of {len(runs)} "
                 f"runs, one of the last two in {last2} (epoch budget {budget}, "
                 f"early-stopping patience {patience}); a longer budget may still "
                 f"raise the AUCs a little.")
    counts = sorted({entry["n"] for entry in stats.values()})
    if counts and counts[0] < 5:
        per_model = ", ".join(f"{m} {stats[(m, None)]['n']}" for m in _models_in(stats))
        lines.append(f"- Seeds per model: {per_model} (fewer than the 5 planned: the "
                     f"time budget ran out).")
    if stats.get(("CGC", None), {}).get("parameters") == \
            stats.get(("MMoE", None), {}).get("parameters"):
        lines.append("- CGC's parameter count equals MMoE's: its per-task gates are "
                     "stored with one logit per expert (8), the same shape as MMoE's.")
    lines += baseline_lines(record, stats, [(t, "auc") for t in tasks],
                            trees_column="epochs (best)")
    lines += tuning_lines(record)
    if record.get("jobs", 1) > 1:
        lines.append(f"- Trained {record['jobs']} runs at a time (`--jobs "
                     f"{record['jobs']}`, worker processes with one TensorFlow thread "
                     f"each); `train s/run` is measured under that sharing.")
    if record.get("parallel_processes"):
        lines.append(f"- Run as {record['parallel_processes']} parallel processes "
                     f"(seeds split between them) on the shared 2-core machine; a "
                     f"process was stopped once another had covered its remaining "
                     f"seeds, so every (model, seed) ran exactly once. Wall time is "
                     f"first start to last finish.")
    lines.append("")
    figure = census_figure(suite, record, stats, figures_dir)
    if figure:
        lines.append(f"![{title}: test AUC per model]({rel_figures}/{figure.name})\n")
    return lines


def tuning_lines(record):
    """How the suite's hyperparameter was chosen: the grid's validation
    scores per model (tuning suites) or the borrowed choice."""
    lines = []
    borrowed = record.get("tuned_from")
    if borrowed:
        chosen = ", ".join(f"{m} {t.partition('=')[2]}"
                           for m, t in borrowed["chosen"].items())
        lines.append(f"- `{borrowed['parameter']}` per model as chosen on "
                     f"`{borrowed['suite']}`'s validation split (same features and "
                     f"models): {chosen}.")
    tuning = record.get("tuning")
    if not tuning or not tuning.get("runs"):
        return lines
    parameter, values = tuning["parameter"], tuning["values"]
    lines.append(f"- `{parameter}` chosen per model on the validation split: every "
                 f"value of {values} trained at seed {tuning['seed']}, the best "
                 f"{tuning.get('criterion', 'validation score')} kept (**bold**); "
                 f"seed {tuning['seed']}'s result above is that run. Validation "
                 f"score per value:\n")
    scores = {(r["name"], r["tune"]): records.validation_score(r) for r in tuning["runs"]}
    models = sorted({name for name, _ in scores}, key=records.row_rank)
    lines.append("  | model | " + " | ".join(str(v) for v in values) + " |")
    lines.append("  |---|" + "---:|" * len(values))
    for model in models:
        cells = []
        for value in values:
            tune = f"{parameter}={value}"
            score = scores.get((model, tune))
            cell = _fmt(score)
            if tuning.get("chosen", {}).get(model) == tune:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"  | {model} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def census_figure(suite, record, stats, figures_dir):
    plt = _pyplot()
    if plt is None:
        return None
    tasks = PAPER[suite]["tasks"]
    models = _models_in(stats)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6))
    for ax, task in zip(axes, tasks):
        xs = range(len(models))
        means = [stats[(m, None)]["tasks"][task]["auc"]["mean"] for m in models]
        stds = [stats[(m, None)]["tasks"][task]["auc"]["std"] for m in models]
        ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=4, label="ours (mean ± std)")
        for i, m in enumerate(models):
            values = [r["metrics"]["test"][task]["auc"] for r in record["runs"]
                      if r["name"] == m]
            ax.plot([i] * len(values), values, ".", color="0.6", ms=4)
            paper_mean = PAPER[suite]["models"].get(m, {}).get(task, (None, None))[1]
            paper_best = PAPER[suite]["models"].get(m, {}).get(task, (None, None))[0]
            if paper_mean is not None:
                ax.plot(i + 0.15, paper_mean, "x", color="C3",
                        label="paper mean" if i == 0 or "paper mean" not in
                        ax.get_legend_handles_labels()[1] else None)
            if paper_best is not None:
                ax.plot(i + 0.15, paper_best, "^", color="C2", mfc="none",
                        label="paper best" if "paper best" not in
                        ax.get_legend_handles_labels()[1] else None)
        ax.set_xticks(list(xs), models, rotation=30)
        ax.set_title(f"{task}: test AUC")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(record.get("description", suite), fontsize=9)
    fig.tight_layout()
    path = Path(figures_dir) / f"{suite}_auc.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _variant_value(variant):
    return float(variant.split("=", 1)[1])


def synthetic_section(record, figures_dir, rel_figures):
    lines = ["## Synthetic data (MMoE paper §3.2 / §5)\n"]
    if record is None or not record.get("runs"):
        lines.append("**Not run**: no record `benchmarks/results/synthetic.json`. Run "
                     "`python benchmarks/run.py --suite synthetic`.\n")
        return lines
    stats = records.aggregate(record)
    models = _models_in(stats)
    variants = sorted({v for _, v in stats}, key=_variant_value)
    seeds = sorted({r["seed"] for r in record["runs"]})
    corr = record.get("label_correlation", {})
    any_run = record["runs"][0]
    args = (any_run.get("dataset") or {}).get("args", {})
    rows = (any_run.get("dataset") or {}).get("rows", {})
    lines.append(
        f"Two regression tasks, d = {args.get('dim')}, c = {args.get('scale')}, "
        f"m = {args.get('num_sines')}, noise std {args.get('noise_std')}, "
        f"{args.get('num_samples')} rows ({rows.get('train')}/{rows.get('valid')}/"
        f"{rows.get('test')} train/valid/test), seeds {seeds} (training seed; the data "
        f"are generated with seed {args.get('seed')}, function seed "
        f"{args.get('function_seed')}). Values: test MSE averaged over the two tasks, "
        f"mean ± sample std over seeds; final training loss is the last epoch's "
        f"summed training loss (both tasks). p is the cosine of the task weight "
        f"vectors; the measured Pearson correlation of the labels differs from it.\n")
    header = "| p | label Pearson (measured) | " + " | ".join(
        f"{m} test MSE" for m in models) + " | " + " | ".join(
        f"{m} final train loss" for m in models) + " |"
    lines += [header, "|---:|---:|" + "---|" * (2 * len(models))]
    for variant in variants:
        measured = corr.get(variant, {}).get("pearson", {}).get("y1~y2")
        cells = []
        for m in models:
            entry = stats.get((m, variant))
            if entry is None:
                cells.append("—")
                continue
            mse = [entry["tasks"][t]["mse"]["mean"] for t in entry["tasks"]]
            per_seed = _per_seed_mse(record, m, variant)
            std = _std(per_seed)
            cells.append(f"{sum(mse) / len(mse):.4f} ± {std:.4f}")
        for m in models:
            losses = [r["history"][-1].get("loss") for r in record["runs"]
                      if r["name"] == m and r["variant"] == variant and r["history"]]
            losses = [v for v in losses if v is not None]
            cells.append(f"{sum(losses) / len(losses):.4f} ± {_std(losses):.4f}"
                         if losses else "—")
        lines.append(f"| {_variant_value(variant)} | {_fmt(measured)} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Ordering by mean test MSE (lowest first), from the table: " + "; ".join(
        f"p = {_variant_value(v)}: " + " < ".join(
            m for _, m in sorted((sum(_per_seed_mse(record, m, v)) /
                                  len(_per_seed_mse(record, m, v)), m)
                                 for m in models if _per_seed_mse(record, m, v)))
        for v in variants) + ".")
    if not {"correlation=0.2", "correlation=0.4", "correlation=0.75"} <= set(variants):
        lines.append("The PLE paper's correlations {0.2, 0.4, 0.75} were not run.")
    lines.append("")
    lines += synthetic_baseline_lines(record, models, variants)
    params = ", ".join(f"{m} {stats[(m, variants[0])]['parameters']:,}" for m in models
                       if (m, variants[0]) in stats)
    lines.append(f"Parameter counts (`count_params`, including the weights on the 100 "
                 f"numeric missing-indicator inputs, which are constant 0 here): "
                 f"{params}.\n")
    for figure in synthetic_figures(record, stats, models, variants, figures_dir):
        lines.append(f"![{figure.stem}]({rel_figures}/{figure.name})\n")
    return lines


def _per_seed_mse(record, model, variant):
    out = []
    for r in record["runs"]:
        if r["name"] == model and r["variant"] == variant:
            values = [records.metric_value(m, "mse") for m in r["metrics"]["test"].values()]
            out.append(sum(values) / len(values))
    return out


def _std(values):
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def synthetic_figures(record, stats, models, variants, figures_dir):
    plt = _pyplot()
    if plt is None:
        return []
    import numpy as np

    paths = []
    # Final test MSE vs p.
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ps = [_variant_value(v) for v in variants]
    for m in models:
        means, stds = [], []
        for v in variants:
            values = _per_seed_mse(record, m, v)
            means.append(np.mean(values) if values else np.nan)
            stds.append(_std(values) if values else np.nan)
        ax.errorbar(ps, means, yerr=stds, marker="o", capsize=4, label=m)
    ax.set_xlabel("task correlation p (cosine of task weights)")
    ax.set_ylabel("test MSE (mean of 2 tasks)")
    ax.set_title("Synthetic data: loss vs correlation")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(figures_dir) / "synthetic_loss_vs_correlation.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    # Training-loss curves per p (mean over seeds; thin lines per seed).
    ncols = min(3, len(variants))
    nrows = -(-len(variants) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows),
                             sharey=True, squeeze=False)
    for ax in axes.flat[len(variants):]:
        ax.set_visible(False)
    for ax, v in zip(axes.flat, variants):
        for i, m in enumerate(models):
            curves = [[e.get("loss") for e in r["history"]] for r in record["runs"]
                      if r["name"] == m and r["variant"] == v]
            for c in curves:
                ax.plot(range(1, len(c) + 1), c, color=f"C{i}", alpha=0.25, lw=0.8)
            length = min(len(c) for c in curves) if curves else 0
            if length:
                mean = np.mean([c[:length] for c in curves], axis=0)
                ax.plot(range(1, length + 1), mean, color=f"C{i}", lw=2, label=m)
        ax.set_title(f"p = {_variant_value(v)}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("training loss (sum of 2 MSEs, log scale)")
    axes[0][0].legend()
    fig.tight_layout()
    path = Path(figures_dir) / "synthetic_loss_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_report(results_dir, out, figures_dir, suites_dir=None):
    results_dir, out, figures_dir = Path(results_dir), Path(out), Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    try:
        rel_figures = figures_dir.resolve().relative_to(out.parent.resolve()).as_posix()
    except ValueError:
        rel_figures = figures_dir.resolve().as_posix()
    suites = [suite_files.load_suite(name, suites_dir)
              for name in suite_files.suite_names(suites_dir)]
    everything = records.load_records(results_dir, [s.name for s in suites])
    # The run overview and the protocol paragraph cover the `make bench`
    # suites; the other suites' sections say how they were run.
    bench_suites = [s.name for s in suites if s.report.make == "bench"]
    found = {name: everything[name] for name in bench_suites if name in everything}
    lines = ["# Benchmark results\n",
             "Written by `benchmarks/report.py` from the records in "
             f"`{_display(results_dir)}/` (each written by `benchmarks/run.py`, which "
             "calls `mtrec.experiments.runner.train` once per config and seed). Every number "
             "below comes from those records; paper numbers are quoted beside them. "
             "Regenerate everything with `make bench`.\n"]
    lines.append("## Runs\n")
    lines.append("| suite | runs | seeds | wall time | command | machine | git commit(s) |")
    lines.append("|---|---:|---|---:|---|---|---|")
    for suite in bench_suites:
        record = found.get(suite)
        if record is None:
            lines.append(f"| {suite} | 0 | — | — | not run | — | — |")
            continue
        commits, dirty, versions = _provenance(record)
        m = record.get("machine", {})
        machine = (f"{m.get('cpu_model') or m.get('processor') or m.get('machine')}, "
                   f"{m.get('cpu_count')} CPUs (affinity {m.get('cpu_affinity', '?')}), "
                   f"{m.get('platform')}")
        seeds = sorted({r["seed"] for r in record["runs"]})
        lines.append(f"| {suite}{' (smoke)' if record.get('smoke') else ''} | "
                     f"{len(record['runs'])} | {seeds} | "
                     f"{_hms(record.get('wall_seconds'))} | `{record.get('command')}` | "
                     f"{machine} | {', '.join(c[:10] for c in commits)}"
                     f"{' (dirty tree)' if dirty else ''} |")
    total = sum(r.get("wall_seconds") or 0 for r in found.values())
    if len({r.get("command") for r in found.values()}) == 1 and len(found) > 1:
        lines.append(f"\nOne command ran the suites one after another: {_hms(total)} of "
                     f"training and evaluation in all (`make bench` adds the set-up "
                     f"and this report).")
    elif found:
        lines.append(f"\nSum of the suites' wall times: {_hms(total)} (suites that ran "
                     f"side by side overlap in time; `make bench` runs them one after "
                     f"another).")
    any_record = next(iter(found.values()), None)
    if any_record and any_record["runs"]:
        versions = any_record["runs"][0].get("versions") or {}
        lines.append("\nVersions: " + ", ".join(f"{k} {v}" for k, v in versions.items())
                     + ".\n")
    tuned = [s for s, r in found.items() if r.get("tuning") or r.get("tuned_from")]
    if tuned:
        lines.append(f"Protocol: model selection on the validation split only. "
                     f"{', '.join(tuned)}: the learning rate per model from a small grid "
                     f"(see each section); every suite: the sizes in the configs, early "
                     f"stopping on validation (the best validation epoch's weights are "
                     f"restored). The test split is evaluated once per run, after "
                     f"training. The papers searched more hyper-parameters (the MMoE "
                     f"paper reports best and mean over its search); our input encoding "
                     f"(embeddings and standardisation in the model) is this "
                     f"library's, not the papers'.\n")
    else:
        lines.append("Protocol: the configs' hyper-parameters are fixed (no search was "
                     "run); the only model selection is early stopping on the validation "
                     "split (the best validation epoch's weights are restored); the test "
                     "split is evaluated once per run. The papers searched "
                     "hyper-parameters; we did not. Our input encoding (embeddings and "
                     "standardisation in the model) is this library's, not the "
                     "papers'.\n")
    spans = {suite: _provenance(record)[0] for suite, record in found.items()}
    if any(len(commits) > 1 for commits in spans.values()):
        lines.append("**Caveat**: the repository changed while the suites ran (other "
                     "work was committed in between), so runs of one suite span several "
                     "commits, each with a dirty tree: "
                     + "; ".join(f"{suite} {len(c)} commit(s)" for suite, c in spans.items())
                     + ". Each run's record names its commit. A clean re-run at one "
                     "commit is `make bench`.\n")
    for suite in suites:
        record = everything.get(suite.name)
        if suite.report.section == "census":
            lines += census_section(suite.name, record, figures_dir, rel_figures)
        elif suite.report.section == "synthetic":
            lines += synthetic_section(record, figures_dir, rel_figures)
        else:
            lines += table_section(suite, record, figures_dir, rel_figures)
    lines += peers_section(results_dir / "peers.json")
    lines += peers_sweep_section(results_dir / "peers_sweep.json", figures_dir, rel_figures)
    lines += scale_section(results_dir / "scale.json")
    lines += tuned_section([results_dir / "tuned_census.json"]
                           + sorted(results_dir.glob("tuned_census_*.json")))
    lines += task_affinity_section(results_dir / "task_affinity.json", figures_dir,
                                   rel_figures)
    lines += transfer_section(results_dir / "transfer.json", rel_figures)
    lines += serving_section(results_dir / "serving.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return out


def table_section(suite, record, figures_dir=None, rel_figures="figures"):
    """A suite's mean ± sample std of its report columns, one row per config;
    then its ablations' served tables (`ablation_lines`)."""
    title, command = suite.report.title or suite.description, f"make {suite.report.make}"
    if record is None or not record.get("runs"):
        return [f"\n## {title}\n", f"Not run yet: `{command}`.\n"]
    stats = records.aggregate(record, baselines=True)
    columns = [tuple(c.split(":")) for c in suite.report.columns]
    seconds = sum(run["train_seconds"] for run in record["runs"])
    machine = record.get("machine", {})
    lines = [f"\n## {title}\n",
             f"Command: `{command}` ({machine.get('platform')}, "
             f"{machine.get('cpu_count')} cores; {seconds / 60:.0f} min of training in "
             f"all).\n", suite.report.notes + "\n"]
    ran = {r["name"] for r in record["runs"]}
    planned = [p.stem for p in suite.config_files()] if suite.rows == "config" else []
    if planned and not set(planned) <= ran:
        lines.append(f"**Partial record**: {len(ran & set(planned))} of the suite's "
                     f"{len(planned)} configs, seeds {sorted({r['seed'] for r in record['runs']})}"
                     f" (`{record.get('command')}`); not run yet: "
                     f"{', '.join(p for p in planned if p not in ran)}.\n")
    lines.append("| config | model | seeds | params | "
                 + " | ".join(f"{task} {metric}" for task, metric in columns)
                 + " |\n|" + "---|" * (4 + len(columns)))
    for row, variant in sorted(stats, key=lambda k: (records.row_rank(k[0]), str(k[1]))):
        entry = stats[(row, variant)]
        cells = []
        for task, metric in columns:
            got = entry["tasks"].get(task, {}).get(metric)
            cells.append("—" if got is None else f"{got['mean']:.4f} ± {got['std']:.4f}")
        label = row if variant is None else f"{row} @ {variant}"
        lines.append(f"| {label} | {entry['model']} | {entry['n']} | "
                     f"{_params(entry['parameters'])} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += baseline_lines(record, records.aggregate(record), columns, suite=suite)
    for ablation in suite.ablations:
        lines += ablation_lines(suite, ablation, record, figures_dir, rel_figures)
    return lines


def _mean_std(stats, row, task, metric):
    """`{"mean", "std"}` of a row's task metric in `records.aggregate`'s
    output, or None."""
    return stats.get(row, {}).get("tasks", {}).get(task, {}).get(metric)


def gain_kept(removed, present, reference):
    """Share of a row's gain over its reference that survives the ablation:
    (removed - reference) / (present - reference); None without a gain."""
    if None in (removed, present, reference) or abs(present - reference) < 1e-12:
        return None
    return (removed - reference) / (present - reference)


def ablation_references(runs, name):
    """`{(model, variant): row}`: per model class, the row whose runs took
    none of the ablation's blanked columns (its reference); models with no
    such row, or several, have none."""
    blanked, model_of = {}, {}
    for r in runs:
        key = (r["name"], r.get("variant"))
        blanked.setdefault(key, set()).update(r["ablations"][name]["blanked"])
        model_of[key] = r["model"]
    found = {}
    for key, columns in blanked.items():
        if not columns:
            found.setdefault((model_of[key], key[1]), []).append(key[0])
    return {k: rows[0] for k, rows in found.items() if len(rows) == 1}


def ablation_lines(suite, ablation, record, figures_dir=None, rel_figures="figures"):
    """The test split served through each run's SavedModel with every input
    and with the ablation's columns blanked, per task:metric, and the share
    of each row's gain over its model's reference row that is kept."""
    label = ablation.name.replace("_", " ")
    lines = [f"### Served through the SavedModel: all inputs vs {label}\n"]
    runs = [r for r in record["runs"]
            if {suite_files.SERVED_SPLIT, ablation.split} <= set(r.get("metrics") or {})]
    if not runs:
        return lines + [f"Not served yet: no run of the record has `{ablation.split}` "
                        f"(`make {suite.report.make}` exports and serves every run).\n"]
    present = records.aggregate({"runs": runs}, split=suite_files.SERVED_SPLIT)
    removed = records.aggregate({"runs": runs}, split=ablation.split)
    references = ablation_references(runs, ablation.name)
    columns = [tuple(c.split(":")) for c in (ablation.columns or suite.report.columns)]
    blank = ", ".join(f"`{c}`" for c in ablation.blank)
    refs = ", ".join(sorted(references.values())) or "none"
    lines.append(
        f"Each run exported as a SavedModel (`mtrec.export.saved_model`) and the test "
        f"split scored through its `serving_default` signature (raw features in): as is "
        f"(\"all inputs\") and with {blank} sent as missing in every request "
        f"(\"{label}\": `\"\"` for text, a NaN vector for a Vector, what a client sends "
        f"when the input is absent). Mean ± std over seeds. \"Gain kept\" = ({label} − "
        f"reference) / (all inputs − reference) of the means, the reference being the "
        f"same model's row that takes none of those inputs ({refs}): 100% means nothing "
        f"of the gain is lost when the inputs are absent, 0% means as good as the "
        f"reference (a graceful fall-back), below 0% worse than never having had them. "
        f"Above 0% needs the training with them to have taught the other inputs' path "
        f"something (what the auxiliary modality losses aim at).\n")
    header = ["config", "model", "seeds"]
    for task, metric in columns:
        header += [f"{task} {metric}: all inputs", f"{task} {metric}: {label}",
                   f"{task} {metric}: gain kept"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in sorted(present, key=lambda k: (records.row_rank(k[0]), str(k[1]))):
        row, variant = key
        entry = present[key]
        reference = references.get((entry["model"], variant))
        cells = [row if variant is None else f"{row} @ {variant}", entry["model"],
                 str(entry["n"])]
        for task, metric in columns:
            a, b = (_mean_std(stats, key, task, metric) for stats in (present, removed))
            cells += ["—" if a is None else f"{a['mean']:.4f} ± {a['std']:.4f}",
                      "—" if b is None else f"{b['mean']:.4f} ± {b['std']:.4f}"]
            if reference == row:
                cells.append("(reference)")
                continue
            ref = _mean_std(present, (reference, variant), task, metric)
            share = gain_kept(b and b["mean"], a and a["mean"], ref and ref["mean"])
            cells.append("—" if share is None else f"{round(100 * share)}%")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    task, metric = columns[0]
    gaps = [abs(r["metrics"][suite_files.SERVED_SPLIT][task][metric]
                - r["metrics"]["test"][task][metric]) for r in runs
            if r["metrics"]["test"].get(task, {}).get(metric) is not None
            and r["metrics"][suite_files.SERVED_SPLIT].get(task, {}).get(metric) is not None]
    if gaps:
        lines.append(f"- Serving agrees with training: served (all inputs) minus Keras "
                     f"test {task} {metric}, largest absolute difference over "
                     f"{len(gaps)} runs: {max(gaps):.1e}.")
    seconds = [r["serving_seconds"] for r in runs if r.get("serving_seconds") is not None]
    if seconds:
        lines.append(f"- Export, load and serving took {sum(seconds) / len(seconds):.0f} s "
                     f"per run (mean over {len(seconds)} runs).")
    figure = ablation_figure(suite, ablation, present, removed, references, columns,
                             figures_dir)
    if figure is not None:
        lines.append(f"\n![{suite.name}: all inputs vs {label}]({rel_figures}/"
                     f"{figure.name})")
    return lines + [""]


def ablation_figure(suite, ablation, present, removed, references, columns, figures_dir):
    """Bars per row: served with all inputs and with the ablation; a dashed
    line at the model's reference row."""
    plt = _pyplot()
    if plt is None or figures_dir is None:
        return None
    keys = sorted(present, key=lambda k: (records.row_rank(k[0]), str(k[1])))
    label = ablation.name.replace("_", " ")
    fig, axes = plt.subplots(1, len(columns), figsize=(max(5, 0.7 * len(keys)) * len(columns)
                                                       / max(1, len(columns) - 0.4), 4.2),
                             squeeze=False)
    xs = list(range(len(keys)))
    for ax, (task, metric) in zip(axes[0], columns):
        for offset, stats, name, color in ((-0.2, present, "all inputs", "C0"),
                                           (0.2, removed, label, "C3")):
            means = [(_mean_std(stats, k, task, metric) or {}).get("mean", float("nan"))
                     for k in keys]
            stds = [(_mean_std(stats, k, task, metric) or {}).get("std", 0.0) for k in keys]
            ax.bar([x + offset for x in xs], means, width=0.4, yerr=stds, capsize=2,
                   color=color, label=name)
        legend_drawn = False
        for i, key in enumerate(keys):
            reference = references.get((present[key]["model"], key[1]))
            ref = _mean_std(present, (reference, key[1]), task, metric)
            if ref is not None:
                ax.hlines(ref["mean"], i - 0.45, i + 0.45, colors="k", linestyles="dashed",
                          label=None if legend_drawn else "reference (no such inputs)")
                legend_drawn = True
        values = [v for stats in (present, removed) for k in keys
                  for v in [(_mean_std(stats, k, task, metric) or {}).get("mean")]
                  if v is not None]
        if values:
            low, high = min(values), max(values)
            pad = 0.1 * (high - low or 1.0)
            ax.set_ylim(low - pad, high + pad)
        ax.set_xticks(xs, [k[0] if k[1] is None else f"{k[0]}@{k[1]}" for k in keys],
                      rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{task} {metric} (served, test)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{suite.report.title or suite.description}", fontsize=9)
    fig.tight_layout()
    path = Path(figures_dir) / f"{suite.name}_{ablation.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _params(value):
    return "—" if value is None else f"{value:,}"


LOWER_IS_BETTER = records.LOWER_IS_BETTER


def _best_network(stats, task, metric, variant=None, rows=None):
    """`(row, mean)` of the network row (among `rows` when given) with the
    best mean `metric` of `task`."""
    best = None
    for (row, v), entry in stats.items():
        got = entry["tasks"].get(task, {}).get(metric)
        if v != variant or got is None or records.is_baseline_row(row) or (
                rows is not None and row not in rows):
            continue
        better = best is None or (got["mean"] < best[1] if metric in LOWER_IS_BETTER
                                  else got["mean"] > best[1])
        if better:
            best = (row, got["mean"])
    return best


def _hgb_protocol(section, runs):
    """One sentence: what the HGB rows are and how they were fit."""
    s = section.get("settings", {})
    text_columns = sorted({c for r in runs for c in r["features"].get("text_columns", [])})
    skipped = sorted({c for r in runs for c in r["features"].get("skipped", [])})
    if text_columns:
        text = (f"raw text ({', '.join(text_columns)}) as TF-IDF (word 1-2-grams, min_df "
                f"{s['text_tfidf']['min_df']}) -> TruncatedSVD to {s['text_components']} "
                f"columns each, fit on the training split only")
    elif skipped:
        text = f"raw text ({', '.join(skipped)}) left out"
    else:
        text = "no text columns"
    return (f"one scikit-learn {section.get('versions', {}).get('scikit-learn', '')} "
            f"HistGradientBoostingClassifier per binary task (Regressor per regression "
            f"task) on the same splits, tasks and label masks as the networks; "
            f"Categorical columns as native categoricals (ordinal codes learned on train, "
            f"at most {s.get('max_categories')} categories, rarest grouped; unseen or "
            f"missing -> missing), numerics as is, MultiHot as 0/1 columns of the "
            f"{s.get('multihot_items')} most frequent items, {text}; learning rate "
            f"{s.get('learning_rate')}, up to {s.get('max_iter')} trees grown "
            f"{s.get('chunk')} at a time until the best validation stage is "
            f"{s.get('patience')} trees old, the number of trees chosen per task on the "
            f"validation split ({s.get('selection', 'validation score')}); "
            f"random_state = seed (without subsampling HGB does not depend on it, so "
            f"seeds repeat the same trees unless an SVD is seeded)")


def _hgb_timing(section, runs, tasks):
    m = section.get("machine", {})
    per_task = []
    for task in tasks:
        values = [r["task_seconds"][task] for r in runs if task in r.get("task_seconds", {})]
        if values:
            per_task.append(f"{task} {sum(values) / len(values):.1f} s")
    encode = [r.get("encode_seconds") or 0 for r in runs]
    return (f"Fit and selection time per task, mean over {len(runs)} run(s): "
            f"{', '.join(per_task)} (encoding the inputs: {max(encode):.1f} s at most; "
            f"{_hms(section.get('wall_seconds'))} for all HGB runs), "
            f"{section['settings'].get('threads')} thread(s) per fit on "
            f"{m.get('cpu_model') or m.get('processor')}, {m.get('cpu_count')} cores shared "
            f"with other work, so the times are indicative.")


def _same_inputs(suite, config_path):
    """Config stems of a config-row suite whose `schema` section (excluded
    and overridden columns) equals that of `config_path`; None for
    model-row suites (every row sees the same inputs)."""
    import yaml

    if suite is None or suite.rows != "config":
        return None

    def section(path):
        return (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("schema") \
            or {}

    want = section(records.ROOT / config_path)
    return {p.stem for p in suite.config_files() if section(p) == want}


def baseline_lines(record, stats, columns, trees_column=None, suite=None):
    """Notes under a table with HGB rows: the protocol, the gap to the best
    network on the same inputs per column, the timings; nothing when the
    record has no HGB run."""
    section = (record.get("baselines") or {}).get("hgb")
    runs = records.baseline_runs(record, "hgb")
    if not section or not runs:
        return []
    base_stats = records.aggregate({"runs": runs})
    tasks = list(dict.fromkeys(t for t, _ in columns))
    lines = [f"- HGB rows: {_hgb_protocol(section, runs)}. They have no parameters "
             f"or epochs"
             + (f"; the `{trees_column}` column holds the trees chosen per seed "
                f"({' / '.join(tasks)})." if trees_column else ".")]
    for row in _models_in(base_stats):
        row_runs = [r for r in runs if r["name"] == row]
        same = _same_inputs(suite, row_runs[0]["config_path"])
        gaps = []
        for task, metric in columns:
            got = base_stats[(row, None)]["tasks"].get(task, {}).get(metric)
            best = _best_network(stats, task, metric, rows=same)
            if got is None or best is None:
                continue
            gaps.append(f"{task} {metric} {got['mean']:.4f} vs {best[1]:.4f} ({best[0]}), "
                        f"{got['mean'] - best[1]:+.4f}")
        if gaps:
            against = ("the best network per column" if same is None else
                       f"the best network on the same inputs ({', '.join(sorted(same))})")
            lines.append(f"- {row} against {against}, HGB − best of the means over "
                         f"seeds: " + "; ".join(gaps) + ".")
        if not trees_column:
            trees = [", ".join(f"{t} {r['iterations'][t]['chosen']}" for t in r["iterations"])
                     for r in row_runs]
            lines.append(f"- {row}: trees chosen on validation "
                         f"({len(row_runs)} seed(s); distinct choices): "
                         + "; ".join(sorted(set(trees))) + ".")
    lines.append(f"- {_hgb_timing(section, runs, list(runs[0]['iterations']))}")
    return lines + _hgb_seed_note(record, runs, "- ") + [""]


def _hgb_seed_note(record, runs, prefix):
    """A line when the HGB rows ran fewer seeds than the networks."""
    ran = sorted({r["seed"] for r in runs})
    planned = sorted({r["seed"] for r in record["runs"]})
    if set(planned) <= set(ran):
        return []
    return [f"{prefix}HGB ran seed(s) {ran} of the networks' {planned}: the shared "
            f"machine's time ran out; `python benchmarks/gbdt_baseline.py --suite "
            f"{record.get('suite')}` adds the others (runs already in the record are "
            f"kept)."]


def synthetic_baseline_lines(record, models, variants):
    """The synthetic suite's HGB table (test MSE per p beside the best
    network's), under the networks' table."""
    section = (record.get("baselines") or {}).get("hgb")
    runs = records.baseline_runs(record, "hgb")
    if not section or not runs:
        return []
    row = runs[0]["name"]
    lines = [f"HGB (per task) on the same data: {_hgb_protocol(section, runs)}. Test MSE "
             f"averaged over the two tasks, mean ± sample std over seeds; the best network "
             f"is the one with the lowest mean test MSE at that p.\n",
             "| p | HGB (per task) test MSE | trees chosen y1 / y2 (per seed) | best network "
             "test MSE | HGB − best |", "|---:|---|---|---|---:|"]
    for variant in variants:
        values = _per_seed_mse({"runs": runs}, row, variant)
        if not values:
            continue
        mean = sum(values) / len(values)
        trees = ", ".join("/".join(str(r["iterations"][t]["chosen"]) for t in r["iterations"])
                          for r in runs if r["variant"] == variant)
        best = min(((sum(v) / len(v), m) for m in models
                    for v in [_per_seed_mse(record, m, variant)] if v), default=None)
        lines.append(f"| {_variant_value(variant)} | {mean:.4f} ± {_std(values):.4f} | "
                     f"{trees} | {best[1]} {best[0]:.4f} | {mean - best[0]:+.4f} |"
                     if best else f"| {_variant_value(variant)} | {mean:.4f} ± "
                     f"{_std(values):.4f} | {trees} | — | — |")
    lines.append("")
    lines.append(_hgb_timing(section, runs, list(runs[0]["iterations"])) + "\n")
    return lines + [line + "\n" for line in _hgb_seed_note(record, runs, "")]


def _peers_module(name):
    # benchmarks/peers/<name>.py, loaded by path: that folder also holds a
    # run.py and a prepare.py that must not shadow benchmarks/run.py.
    spec = importlib.util.spec_from_file_location(f"peers_{name}",
                                                  HERE / "peers" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peers_table():
    return _peers_module("table")


def peers_section(path):
    """The side-by-side table from benchmarks/results/peers.json
    (written by benchmarks/peers/run.py)."""
    lines = ["\n## Side by side with DeepCTR and torch-rechub (Census-Income group 1)\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `make bench-peers`.\n"]
    record = records.read_record(path)
    peers_table = _peers_table()
    runs = [r for r in record["runs"] if "error" not in r]
    failed = len(record["runs"]) - len(runs)
    m, p = record["machine"], record["protocol"]
    versions = "; ".join(f"{lib}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
                         for lib, vs in record.get("versions", {}).items())
    commit = (record.get("git") or {}).get("commit") or "unknown"
    lines.append(
        f"Command: `make bench-peers` (`{record['command']}`"
        f"{', smoke' if record.get('smoke') else ''}), {_hms(record.get('wall_seconds'))} "
        f"on {m['cpu_model']}, {m['cpu_affinity']} cores, {record['threads']} framework "
        f"threads for every library, one job at a time, libraries interleaved; commit "
        f"{commit[:10]}{' (dirty tree)' if (record.get('git') or {}).get('dirty') else ''}. "
        f"The same encoded rows for all (train/valid/test {p['rows']['train']:,}/"
        f"{p['rows']['valid']:,}/{p['rows']['test']:,}, mtrec's vocabularies and "
        f"scaling, sha256-checked), {p['embedding_dim']}-dim embeddings, SharedBottom "
        f"[128], MMoE 8 x [16], PLE 2 levels x (1 specific + 2 shared) x [16], towers "
        f"[8], Adam {p['learning_rate']:g}, batch {p['batch_size']}, at most "
        f"{p['max_epochs']} epochs, early stopping on the mean validation AUC "
        f"(patience {p['patience']}, best weights restored); seeds {p['seeds']}. "
        f"Medians over seeds; test AUC is scikit-learn's on the test split. Timed: "
        f"{p['timed']}.{f' {failed} run(s) failed and are left out.' if failed else ''}\n")
    if versions:
        lines.append(f"Versions: {versions}.\n")
    lines += peers_table.markdown(runs)
    lines.append("")
    lines.append(f"Ratios are mtrec / peer (train and predict: higher is faster; memory: "
                 f"lower is less). Goal (issue 12): train ex/s >= "
                 f"{peers_table.GOAL_TRAIN_RATIO:g}x DeepCTR's at a mean test income "
                 f"AUC no worse than DeepCTR's mean - {peers_table.GOAL_AUC_MARGIN:g}, "
                 f"and no more memory added by training; judged against both DeepCTR "
                 f"variants.\n")
    lines.append("Differences between the libraries' configurations that their APIs do "
                 "not let us remove:\n")
    lines += [f"- {item}" for item in record.get("differences",
                                                 peers_table.CONFIG_DIFFERENCES)]
    return lines + [""]


def peers_sweep_section(path, figures_dir=None, rel_figures="figures"):
    """Scaling curves against DeepCTR from benchmarks/results/peers_sweep.json
    (`benchmarks/peers/run.py --sweep ...`, `make bench-peers-sweep`): one
    table per swept size, a sentence per curve on how the ratio moved, and
    `peers_sweep.png` when matplotlib is there."""
    lines = ["\n## Scaling curves against DeepCTR: batch size and number of experts\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `make bench-peers-sweep`.\n"]
    record = records.read_record(path)
    sweep = _peers_module("sweep")
    runs = [r for r in record["runs"] if "error" not in r]
    failed = len(record["runs"]) - len(runs)
    m, p = record["machine"], record["protocol"]
    sweeps = [(s["name"], s["values"]) for s in p["sweeps"]]
    git = record.get("git") or {}
    seeds_done = sorted({r["seed"] for r in runs})
    unfinished = "" if record.get("finished") else (
        f" The run did not finish: {len(record['runs'])} of "
        f"{len(p['points']) * len(p['seeds']) * len(p['models']) * len(p['libraries'])} "
        f"jobs are in the record.")
    lines.append(
        f"Command: `make bench-peers-sweep` (`{record['command']}`"
        f"{', smoke' if record.get('smoke') else ''}), {_hms(record.get('wall_seconds'))} "
        f"on {m['cpu_model']}, {m['cpu_affinity']} cores, {record['threads']} framework "
        f"threads for every library, one job at a time, the libraries interleaved at "
        f"every point (their order rotating); commit {(git.get('commit') or 'unknown')[:10]}"
        f"{' (dirty tree)' if git.get('dirty') else ''}. The peers protocol above (same "
        f"encoded rows, train/valid/test {p['rows']['train']:,}/{p['rows']['valid']:,}/"
        f"{p['rows']['test']:,}; {p['embedding_dim']}-dim embeddings, experts [16], towers "
        f"[8], Adam {p['learning_rate']:g} at every batch size) with one size changed per "
        f"curve; models {', '.join(p['models'])}; seeds {seeds_done}. Timed: {p['timed']}."
        f"{f' {failed} run(s) failed and are left out.' if failed else ''}{unfinished}\n")
    versions = "; ".join(f"{lib}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
                         for lib, vs in record.get("versions", {}).items())
    if versions:
        lines.append(f"Versions: {versions}.\n")
    lines += sweep.markdown(sweeps, p["models"], p["libraries"], runs)
    rows = sweep.curves(sweeps, p["models"], p["libraries"], runs)
    notes = []
    for name, _ in sweeps:
        for model in p["models"]:
            for pair in sweep.PAIRS:
                t = sweep.trend(rows, name, model, pair)
                if t is None:
                    continue
                unit = sweep.SWEEPABLE[name][3]
                notes.append(
                    f"- {model}, {unit} {t['first']:,} -> {t['last']:,}: {pair[0]} keeps "
                    f"{t['ours']:.0%} of its train ex/s, {pair[1]} {t['theirs']:.0%}; "
                    f"{pair[0]} / {pair[1]} goes from {t['ratio_first']:.2f}x to "
                    f"{t['ratio_last']:.2f}x.")
    if notes:
        lines += ["", "From each curve's first point to its last (medians):", ""] + notes
    figure = peers_sweep_figure(sweeps, p["models"], p["libraries"], rows, figures_dir)
    if figure is not None:
        lines.append(f"\n![train examples/s vs batch size and experts]"
                     f"({rel_figures}/{figure.name})")
    return lines + [""]


def peers_sweep_figure(sweeps, models, libraries, rows, figures_dir):
    """One panel per sweep: train ex/s per library against the swept size
    (log2 axis), one line per (library, model)."""
    plt = _pyplot()
    if plt is None or figures_dir is None or not rows:
        return None
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5 * len(sweeps), 3.6), squeeze=False)
    sweep = _peers_module("sweep")
    for ax, (name, _) in zip(axes[0], sweeps):
        for library in libraries:
            for model in models:
                points = [(r["value"], r["libraries"][library]["train_examples_per_s"])
                          for r in rows if r["sweep"] == name and r["model"] == model
                          and r["libraries"].get(library)]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, "o-", label=library if len(models) == 1
                            else f"{library} {model}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(sweep.SWEEPABLE[name][3])
        ax.set_ylabel("train examples/s (median)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(figures_dir) / "peers_sweep.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(value, spec=",.0f"):
    return "—" if value is None else format(value, spec)


#: Row labels of the tuned records, by their config's file name.
TUNED_LABELS = {
    "census_mmoe": "MMoE, periodic numeric embeddings, tuned (architecture, learning rate)",
    "census_mmoe_wide": "MMoE, tuned wide (architecture, optimiser, regularisation, "
                        "embedding widths, periodic frequency scale)",
}


def tuned_section(paths):
    """Each tuned model (`benchmarks/tuned.py`, one record per tune config)
    against the per-task HGB row."""
    lines = ["\n## Tuned by mtrec tune, against gradient boosting (Census-Income group 1)\n"]
    records_found = [records.read_record(p) for p in map(Path, paths) if p.is_file()]
    if not records_found:
        return lines + ["Not run yet: `python benchmarks/tuned.py`.\n"]
    for record in records_found:
        lines += _tuned_record(record)
    return lines


def _tuned_record(record):
    complete = [t for t in record["trials"] if t["state"] == "COMPLETE"]
    stem = Path(record["config"]).stem
    command = "python benchmarks/tuned.py" + (
        "" if stem == "census_mmoe" else f" --config {record['config']}")
    lines = [
        f"`{command}`: `mtrec tune {record['config']}` ({len(complete)} "
        f"complete of {len(record['trials'])} trials, TPE, validation split only), then "
        f"`mtrec train best.yaml` per seed (the test split read once each), on "
        f"{record['cpu']}. Best validation mean AUC {record['best_value']:.4f} with "
        + ", ".join(f"`{k}` = {v:.4g}" if isinstance(v, float) else f"`{k}` = {v}"
                    for k, v in (record["best_values"] or {}).items()) + ".\n"]
    tasks = list(record["runs"][0]["test"]) if record["runs"] else []
    lines.append("| model | seeds | " + " | ".join(f"{t} test AUC" for t in tasks) + " |")
    lines.append("|---|---|" + "---|" * len(tasks))
    rows = [(TUNED_LABELS.get(stem, stem), record["runs"])] + [
        (f"{also['model']} with the best trial's settings, not tuned for it "
         f"({', '.join(f'{k}: {v}' for k, v in also['args'].items())})", also["runs"])
        for also in record.get("also") or []]
    gaps = []
    for label, runs in rows:
        means = {t: sum(r["test"][t]["auc"] for r in runs) / len(runs) for t in tasks}
        lines.append(f"| {label} | {', '.join(str(r['seed']) for r in runs)} | "
                     + " | ".join(f"{means[t]:.4f} ("
                                  + ", ".join(f"{r['test'][t]['auc']:.4f}" for r in runs)
                                  + ")" for t in tasks) + " |")
        if record.get("hgb"):
            gaps.append(f"{label.split(',')[0].split(' ')[0]}: " + ", ".join(
                f"{t} {means[t] - record['hgb'][t]:+.4f}" for t in tasks if t in record["hgb"]))
    if record.get("hgb"):
        lines.append("| HGB (per task), the census_g1 record | | "
                     + " | ".join(f"{record['hgb'].get(t, float('nan')):.4f}" for t in tasks)
                     + " |")
        lines.append(f"\nGap to HGB (mean of seeds minus HGB): {'; '.join(gaps)}.\n")
    return lines


def task_affinity_section(path, figures_dir, rel_figures):
    """TAG's inter-task affinity on two known pairs of synthetic tasks
    (`benchmarks/task_affinity.py`) and the grouping chosen from it."""
    lines = ["\n## Which tasks should share: measured task affinity (synthetic pairs)\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `python benchmarks/task_affinity.py`.\n"]
    record = records.read_record(path)
    names = record["task_names"]
    lines.append(
        f"`python benchmarks/task_affinity.py`: {len(names)} MMoE §3.2 regression tasks "
        f"in two pairs (task weight cosine {record['within_pair_cosine']} within a pair, "
        f"0 across; {record['rows']:,} rows, d = {record['dim']}, seed {record['seed']}). "
        f"Model {record['model']} ({record['num_shared_parameters']:,} shared parameters: "
        f"embedding and backbone) trains {record['steps']} steps of "
        f"{record['batch_size']} rows; at each step `mtrec.analysis.task_affinity` takes "
        f"an SGD lookahead of learning rate {record['learning_rate']} on the shared "
        f"parameters per task (Fifty et al., NeurIPS 2021). "
        f"Z[source -> target] = 1 - L_target(after) / L_target(before), mean over the "
        f"steps (± standard error):\n")
    lines.append("| source \\ target | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for i, source in enumerate(names):
        lines.append(f"| {source} | " + " | ".join(
            f"{record['affinity'][i][j]:+.5f} ± {record['stderr'][i][j]:.5f}"
            for j in range(len(names))) + " |")
    lines.append("\nMean cosine of the per-task gradients on the shared parameters:\n")
    lines.append("| task | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for i, source in enumerate(names):
        lines.append(f"| {source} | " + " | ".join(
            f"{record['gradient_cosine'][i][j]:+.3f}" for j in range(len(names))) + " |")
    groups = " and ".join("{" + ", ".join(g) + "}" for g in record["groups"])
    lines.append(
        f"\n`group_tasks(affinity, num_groups={len(record['groups'])})` (exhaustive over "
        f"the partitions): {groups}, TAG score {record['score']:.5f} "
        f"({'the generating pairs' if record['recovered_pairs'] else 'not the generating pairs'}"
        f"); the gradient cosine gives "
        + " and ".join("{" + ", ".join(g) + "}" for g in record["groups_by_gradient_cosine"])
        + f". Measured in {record['seconds']:.1f} s.\n")
    if (Path(figures_dir) / "task_affinity.png").is_file():
        lines.append(f"![task affinity]({rel_figures}/task_affinity.png)\n")
    return lines


def transfer_section(path, rel_figures="figures"):
    """A group-1 model given the `education` task by `with_tasks`, against
    education trained from scratch, per labelled fraction
    (benchmarks/results/transfer.json, `benchmarks/transfer.py`)."""
    lines = ["\n## Adding a task to a trained model (Census-Income, education)\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `python benchmarks/transfer.py`.\n"]
    record = records.read_record(path)
    s, summary = record["settings"], record["summary"]
    commit = (record.get("git") or {}).get("commit") or "unknown"
    lines.append(
        f"`{record['command'].strip()}` ({(record.get('wall_seconds') or 0) / 60:.0f} min on "
        f"{record['machine']['cpu']}, {record['machine']['cpu_count']} shared cores; "
        f"commit {commit[:10]}). A group-1 {s['model']} ({s['model_args']}; Adam "
        f"{s['learning_rate']}, batch {s['batch_size']}, at most {s['epochs']} epochs, "
        f"early stopping on the mean validation AUC) gets the group-2 task `education` "
        f"through `model.with_tasks(TaskSpec('education'), freeze=..., "
        f"train_tasks=['education'])`, fine-tuned on a seeded sample of the training rows "
        f"with education labels only (at most {s['finetune_epochs']} epochs, early "
        f"stopping on the validation education AUC, patience {s['patience']}); `scratch` "
        f"is the same architecture trained on education alone on the same rows. Education "
        f"test AUC, mean over seeds {s['seeds']} (± sample std when more than one); the "
        f"last column is the old tasks' test AUC after the 100% transfer.\n")
    fractions = sorted({e["fraction"] for e in summary})
    cell = {(e["method"], e["fraction"]): e for e in summary}
    methods = list(dict.fromkeys(e["method"] for e in summary))
    rows = {e["fraction"]: e["rows"] for e in summary}
    lines.append("| method | " + " | ".join(f"{f:.0%} ({rows[f]:,} rows)" for f in fractions)
                 + " | income / marital AUC at 100% |")
    lines.append("|---|" + "---|" * (len(fractions) + 1))
    for method in methods:
        cells = []
        for f in fractions:
            e = cell.get((method, f))
            std = ("" if e is None or e.get("education_auc_std") is None
                   else f" ± {e['education_auc_std']:.4f}")
            cells.append("—" if e is None else f"{e['education_auc']:.4f}{std}")
        last = cell.get((method, fractions[-1]), {})
        old = (f"{last['income_auc']:.4f} / {last['marital_auc']:.4f}"
               if "income_auc" in last else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {old} |")
    base = record["base"]
    lines.append("| group-1 model before transfer | " + " | ".join("—" for _ in fractions)
                 + " | " + " / ".join(
                     f"{sum(b['test_auc'][t] for b in base) / len(base):.4f}"
                     for t in ("income", "marital")) + " |")
    capped = [r for r in record["runs"] if r["epochs_run"] >= s["finetune_epochs"]]
    if capped:
        lines.append(f"\n{len(capped)} of {len(record['runs'])} fine-tuning / scratch runs "
                     f"stopped at the {s['finetune_epochs']}-epoch cap, not by early "
                     f"stopping: the comparison is at a fixed budget, not at convergence.")
    lines.append(f"\n![education test AUC per labelled fraction]"
                 f"({rel_figures}/transfer_curve.png)\n")
    return lines


def scale_section(path):
    """Training examples/s by strategy, streaming memory as rows grow and
    adapt time, from benchmarks/results/scale.json (benchmarks/scale.py)."""
    lines = ["\n## Scale: strategies, streaming memory, adapt time (Census-Income group 1)\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `make bench-scale`.\n"]
    record = records.read_record(path)
    m, s = record["machine"], record["settings"]
    training, streaming, adapt = (record["training"]["summary"],
                                  record["streaming"]["summary"], record["adapt"])
    commit = (record.get("git") or {}).get("commit") or "unknown"
    lines.append(
        f"Command: `make bench-scale` (`{record['command'].strip()}`"
        f"{', quick smoke run' if record.get('quick') else ''}), "
        f"{_hms(record.get('wall_seconds'))} on {m['cpu_model']}, {m['cpu_count']} cores "
        f"(affinity {m.get('cpu_affinity')}), shared with other work (load average "
        f"{m.get('load_average')} at the start), so the timings are noisy; commit "
        f"{commit[:10]}{' (dirty tree)' if (record.get('git') or {}).get('dirty') else ''}. "
        f"Every figure from a fresh process; medians of {s['repeats']} training and "
        f"{s['stream_repeats']} streaming repeat(s). Method and caveats: the docstring of "
        f"`benchmarks/scale.py`.\n")
    if training["cases"]:
        lines.append(f"**Training** through `mtrec train` (MMoE 8 x [16], {s['epochs']} "
                     f"epoch(s) of {s['train_rows']:,} rows, no early stopping; examples/s = "
                     f"rows x epochs / `train_seconds`, which includes the first epoch's "
                     f"tracing and each epoch's validation pass):\n")
        lines.append("| case | strategy | replicas | batch per replica | global batch | "
                     "examples/s | x 1 process | step ms | peak RSS per process (MB) |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for case, c in training["cases"].items():
            rss = ", ".join(f"{role} {_num(mb)}" for role, mb in c["peak_rss_mb"].items())
            lines.append(f"| {case} | {c['strategy']} | {c['replicas']} | "
                         f"{c['batch_per_replica']:,} | {c['global_batch']:,} | "
                         f"{_num(c['examples_per_second'])} | "
                         f"{_num(c['ratio_to_1_process'], '.2f')} | {c['step_ms']:.1f} | "
                         f"{rss} |")
        notes = []
        mirrored = training["cases"].get("mirrored")
        if mirrored and mirrored["replicas"] == 1:
            notes.append("`mirrored` had 1 replica: this host has no GPU, so "
                         "MirroredStrategy holds only `/cpu:0`; it shows the strategy's "
                         "cost, not a speed-up.")
        if training.get("overhead_ms_per_step") is not None:
            gain = (training["cases"].get("2 workers") or {}).get("ratio_to_1_process")
            notes.append(
                f"Overhead per step of 2 workers, step(2 workers) - step(1 process at the "
                f"same batch per replica): {training['overhead_ms_per_step']:.1f} ms "
                f"({_num(training['overhead_fraction'], '.0%')} of that step). It holds the "
                f"gradient all-reduce over loopback and the wait between the workers, but "
                f"also the two processes sharing the same {m.get('cpu_affinity')} cores: an "
                f"upper bound on communication proper. No gain is expected from 2 workers "
                f"on 2 cores"
                + ("; none was seen." if gain is not None and gain <= 1 else "."))
        base, two = training["cases"].get("1 process"), training["cases"].get("2 workers")
        if base and two:
            workers = [mb for role, mb in two["peak_rss_mb"].items()
                       if role.startswith("worker") and mb is not None]
            single = base["peak_rss_mb"].get("process")
            notes.append(
                f"In short: 2 workers on these {m.get('cpu_affinity')} cores train at "
                f"{_num(two['ratio_to_1_process'], '.2f')}x the examples/s of one process at "
                f"the same global batch; each worker peaked at "
                f"{' and '.join(_num(mb) for mb in workers)} MB against {_num(single)} MB "
                f"for the single process, and the launcher holds "
                f"{_num(two['peak_rss_mb'].get('launcher'))} MB more.")
        for note in notes:
            lines += ["", note]
        lines.append("")
    lines.append(f"**Streaming memory** (`mtrec.data.shards.from_files`, batch "
                 f"{s['stream_batch_size']:,}, chunks of {s['chunk_rows']:,} rows, shuffle "
                 f"buffer {s['shuffle_buffer']:,}; schema adapted on the first "
                 f"{s['sample_rows']:,} rows) over Census x k: the train rows repeated k "
                 f"times with noise, {s['num_shards']} Parquet shards (`write_shards`):\n")
    lines.append("| k | reader | rows | rows/s | peak RSS (MB) | RSS before streaming (MB) | "
                 "streaming adds (MB) |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|")
    for c in streaming["cases"]:
        lines.append(f"| {c['k']} | {c['reader']} | {c['rows']:,} | "
                     f"{_num(c['rows_per_second'])} | {_num(c['peak_rss_mb'])} | "
                     f"{_num(c['rss_before_stream_mb'])} | {_num(c.get('stream_adds_mb'))} |")
    ratios = [f"{reader}, x{item['k']} / x1: peak RSS {_num(item['peak'], '.2f')}, what "
              f"streaming adds {_num(item.get('stream_adds'), '.2f')} (rows "
              f"x{_num(item['rows_ratio'], '.0f')})"
              for reader, items in streaming["rss_ratio"].items() for item in items]
    if ratios:
        lines.append("\nRSS ratios: " + "; ".join(ratios) + ".\n")
    one = {c["k"]: c for c in streaming["cases"] if c["reader"] == "1 worker"}
    if 1 in one and len(one) > 1:
        top = one[max(one)]
        growth = top["rows"] / one[1]["rows"]
        lines.append(
            f"In short, for one worker: {growth:.0f}x the rows, "
            f"{_num(top['peak_rss_mb'] - one[1]['peak_rss_mb'], '+,.0f')} MB of peak RSS "
            f"({_num(ratio_or_none(top['peak_rss_mb'], one[1]['peak_rss_mb']), '.2f')}x); "
            f"what streaming adds above the RSS before it went from "
            f"{_num(one[1].get('stream_adds_mb'))} to {_num(top.get('stream_adds_mb'))} MB "
            f"({_num(ratio_or_none(top.get('stream_adds_mb'), one[1].get('stream_adds_mb')), '.2f')}x), "
            f"far below the {growth:.0f}x of the rows.\n")
    lines.append(f"**Adapt time**: `Schema.infer` + `Schema.adapt` on {adapt['rows']:,} rows "
                 f"of the x{adapt['table_k']} table: {adapt['seconds_per_million']:.1f} s per "
                 f"million rows (infer {adapt['infer_seconds_per_million']:.1f} s, adapt "
                 f"{adapt['adapt_seconds_per_million']:.1f} s); the frame held "
                 f"{_num(adapt['frame_mb'])} MB, the process peaked at "
                 f"{_num(adapt['peak_rss_mb'])} MB.\n")
    return lines


def ratio_or_none(value, baseline):
    return None if value is None or not baseline else value / baseline


def _display(path):
    try:
        return Path(path).resolve().relative_to(records.ROOT).as_posix()
    except ValueError:
        return str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(records.RESULTS))
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--figures-dir", default=str(HERE / "figures"))
    args = parser.parse_args(argv)
    path = write_report(args.results_dir, args.out, args.figures_dir)
    print(f"wrote {path}")
    return 0



def serving_section(path):
    """SavedModel latency per signature, against Keras and the signature
    floors, and the breakdown of the serving graph
    (benchmarks/results/serving.json, `benchmarks/serving.py`)."""
    lines = ["\n## Serving latency (SavedModel, Census-Income group 1)\n"]
    if not Path(path).is_file():
        return lines + ["Not run yet: `python benchmarks/serving.py`.\n"]
    record = records.read_record(path)
    git = record.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty tree)" if git.get("dirty") else "")
    load = record.get("load_average")
    lines.append(
        f"`{record.get('command') or 'python benchmarks/serving.py'}` on "
        f"{record['processor']}, {record['threads']} TF thread(s), {record['cpu_count']} "
        f"cores shared with other work (load average "
        f"{', '.join(f'{x:.1f}' for x in load) if load else 'not recorded'} at the end), so "
        f"absolute times are noisy; every row of a model was timed in the same rounds "
        f"({record['rounds']} interleaved rounds, {record['requests']} batch-1 requests per "
        f"row; medians), so the ratios between rows are the figures to read. TensorFlow "
        f"{record['tensorflow']}, commit {commit}"
        f"{'; baseline rows: the same weights exported by commit ' + record['baseline_commit'] if record.get('baseline_commit') else ''}. "
        f"A row is an export and the signature it is called through; `flat call` calls "
        f"the signature's graph function with its flat list of tensors (no Python binding "
        f"of named inputs: near what a C++ caller such as TF Serving spends in the graph); "
        f"the floors are the same input signatures around a trivial body. Method: the "
        f"docstring of `benchmarks/serving.py`.\n")
    for model in dict.fromkeys(r["model"] for r in record["results"]):
        rows = sorted((r for r in record["results"] if r["model"] == model),
                      key=_serving_rank)
        by = {r["export"]: r for r in rows}
        lines.append(f"**{model}** ({rows[0]['parameters']:,} parameters; Keras "
                     f"`predict_on_batch` b1 p50 {rows[0]['keras_b1_p50_ms']:.3f} ms, b1024 "
                     f"{_num(rows[0]['keras_b1024_rows_per_s'])} rows/s):\n")
        default = by.get("current")
        lines.append("| export, signature | b1 p50 ms | b1 p99 ms | b1 p50 vs serving_default "
                     "| b1024 rows/s | b1024 vs serving_default | export MB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            label = r["export"] if "," in r["export"] or "floor" in r["export"] else \
                f"{r['export']}, serving_default"
            b1 = (f"{default['served_b1_p50_ms'] / r['served_b1_p50_ms']:.2f}x"
                  if default else "—")
            big = (f"{r['served_b1024_rows_per_s'] / default['served_b1024_rows_per_s']:.2f}x"
                   if default else "—")
            lines.append(f"| {label} | {r['served_b1_p50_ms']:.3f} | "
                         f"{r['served_b1_p99_ms']:.3f} | {b1} | "
                         f"{_num(r['served_b1024_rows_per_s'])} | {big} | "
                         f"{r['export_mb']:.2f} |")
        breakdown = (record.get("breakdown") or {}).get(model)
        if breakdown:
            lines.append(f"\nBreakdown of the current {model} graph: pieces timed as plain "
                         f"`tf.function`s on the same rows (interleaved rounds, medians; a "
                         f"piece includes its own call overhead, so pieces do not add up):\n")
            lines.append("| piece | b1 ms | b1024 ms |")
            lines.append("|---|---:|---:|")
            for piece, t in breakdown.items():
                lines.append(f"| {piece} | {t['b1']:.3f} | {t['b1024']:.3f} |")
        lines.append("")
    return lines


def _serving_rank(row):
    """Serving rows in reading order: the current export's signatures, the
    baseline's, then the floors."""
    export = row["export"]
    group = 2 if "floor" in export else 1 if export.startswith("baseline") else 0
    kind = next((i for i, part in enumerate(
        [", packed signature, flat call", ", packed signature", ", flat call",
         ", tf.Example signature"]) if export.endswith(part)), -1)
    order = {-1: 0, 2: 1, 1: 2, 0: 3, 3: 4}[kind]
    return group, order, export


if __name__ == "__main__":
    sys.exit(main())
