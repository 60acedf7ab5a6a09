"""Aggregate the derived MovieLens funnel runs into a table.

Reads `runs/movielens_funnel/<model>_seed<N>/metrics.json` (written by
`mtrec train`, see benchmarks/run_funnel.sh) and writes
`benchmarks/results/movielens_funnel.json` (every record's test metrics)
and `benchmarks/results/movielens_funnel.md` (mean ± std over seeds of
test CTR AUC, CVR AUC on clicked impressions, CTCVR AUC and GAUC by user).
"""

import json
import platform
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

ORDER = ["shared_bottom", "mmoe", "ple", "esmm", "aitm"]
COLUMNS = [("ctr", "auc"), ("cvr", "auc"), ("ctcvr", "auc"), ("ctr", "gauc"),
           ("ctcvr", "gauc")]


def main(runs="runs/movielens_funnel", out="benchmarks/results"):
    records = defaultdict(list)
    for path in sorted(Path(runs).glob("*_seed*/metrics.json")):
        name = re.sub(r"_seed\d+$", "", path.parent.name)
        records[name].append(json.loads(path.read_text()))
    if not records:
        raise SystemExit(f"No runs under {runs}; run benchmarks/run_funnel.sh first.")
    rows, raw = [], {}
    for name in [n for n in ORDER if n in records] + sorted(set(records) - set(ORDER)):
        runs_ = records[name]
        raw[name] = [{"seed": r["seed"], "parameters": r["parameters"],
                      "epochs_run": r["epochs_run"], "train_seconds": r["train_seconds"],
                      "test": r["metrics"]["test"]} for r in runs_]
        cells = []
        for task, metric in COLUMNS:
            values = np.array([r["metrics"]["test"][task][metric] for r in runs_])
            cells.append(f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f}")
        rows.append(f"| {runs_[0]['model_class']} | {len(runs_)} | {runs_[0]['parameters']:,} | "
                    + " | ".join(cells) + " |")
    header = ("| model | seeds | params | CTR AUC | CVR AUC (clicked) | CTCVR AUC "
              "| CTR GAUC (user) | CTCVR GAUC (user) |\n|---|---|---|---|---|---|---|---|")
    table = header + "\n" + "\n".join(rows)
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "movielens_funnel.json").write_text(json.dumps(
        {"machine": platform.platform(), "cpu_count": os.cpu_count(), "runs": raw}, indent=1))
    Path(out, "movielens_funnel.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
