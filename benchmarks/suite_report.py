"""Aggregate one benchmark suite's runs into a mean ± std table.

Reads `runs/<suite>/<config>_seed<N>/metrics.json` (written by `mtrec train`
through benchmarks/run_suite.sh) and writes `benchmarks/results/<suite>.json`
(each run's seed, parameters, epochs, train time and test metrics) and
`benchmarks/results/<suite>.md` (mean ± std over seeds of the chosen test
metrics, one row per config).

    python benchmarks/suite_report.py --suite movielens_funnel \\
        --columns ctr:auc,cvr:auc,ctcvr:auc,ctr:gauc,ctcvr:gauc
"""

import argparse
import json
import os
import platform
import re
from collections import defaultdict
from pathlib import Path

import numpy as np


def aggregate(suite, columns, runs_root="runs", out="benchmarks/results"):
    records = defaultdict(list)
    for path in sorted(Path(runs_root, suite).glob("*_seed*/metrics.json")):
        records[re.sub(r"_seed\d+$", "", path.parent.name)].append(json.loads(path.read_text()))
    if not records:
        raise SystemExit(f"No runs under {Path(runs_root, suite)}; run "
                         f"benchmarks/run_suite.sh {suite} first.")
    order = [p.stem for p in sorted(Path("benchmarks/configs", suite).glob("*.yaml"))]
    names = [n for n in order if n in records] + sorted(set(records) - set(order))
    header = ("| config | model | seeds | params | "
              + " | ".join(f"{task} {metric}" for task, metric in columns)
              + " |\n|" + "---|" * (4 + len(columns)))
    rows, raw = [], {}
    for name in names:
        runs = records[name]
        raw[name] = [{"seed": r["seed"], "parameters": r["parameters"],
                      "epochs_run": r["epochs_run"], "train_seconds": r["train_seconds"],
                      "git": r.get("git"), "test": r["metrics"]["test"]} for r in runs]
        cells = []
        for task, metric in columns:
            values = np.array([r["metrics"]["test"][task][metric] for r in runs], float)
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.4f} ± {spread:.4f}")
        rows.append(f"| {name} | {runs[0]['model_class']} | {len(runs)} | "
                    f"{runs[0]['parameters']:,} | " + " | ".join(cells) + " |")
    table = header + "\n" + "\n".join(rows) + "\n"
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, f"{suite}.json").write_text(json.dumps(
        {"suite": suite, "machine": platform.platform(), "cpu_count": os.cpu_count(),
         "columns": [f"{t}:{m}" for t, m in columns], "runs": raw}, indent=1))
    Path(out, f"{suite}.md").write_text(table)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--columns", required=True,
                        help="comma-separated task:metric, e.g. ctr:auc,cvr:auc")
    args = parser.parse_args(argv)
    columns = [tuple(item.split(":")) for item in args.columns.split(",")]
    print(aggregate(args.suite, columns))


if __name__ == "__main__":
    main()
