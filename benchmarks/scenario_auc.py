"""Per-scenario test AUC of the runs of a multi-scenario suite.

    python benchmarks/scenario_auc.py                       # clothing_scenarios
    python benchmarks/scenario_auc.py --runs-dir runs/bench/clothing_scenarios

Loads each run's `model.keras` from the suite's raw run folders
(`runs/bench/<suite>/<config>/seed<k>/`), predicts the test split of the
run's dataset and prints, per binary task, the AUC within each value of the
dataset's group column (the scenario; scikit-learn's roc_auc_score), with
the number of test rows. The suite's record holds the overall AUC and the
GAUC (row-weighted mean of these); this is the breakdown behind them.
"""

import argparse
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mtrec.data.registry import load_dataset  # noqa: E402
from mtrec.experiments.config import load_config  # noqa: E402


def scenario_aucs(run_folder):
    """DataFrame (scenario, task, rows, auc) of one run folder."""
    config = load_config(run_folder / "config.yaml")
    data = load_dataset(config.dataset.name, **config.dataset.args)
    model = keras.saving.load_model(run_folder / "model.keras")
    test = data.test
    predictions = model.predict(test, batch_size=2048, verbose=0)
    rows = []
    for task in model.schema.tasks:
        if task.kind != "binary":
            continue
        labels = test[task.label].to_numpy()
        for scenario, index in test.groupby(data.group_column, dropna=False).indices.items():
            y = labels[index]
            auc = (roc_auc_score(y, predictions[task.name][index])
                   if 0 < y.sum() < len(y) else np.nan)
            rows.append({"scenario": scenario, "task": task.name, "rows": len(index),
                         "auc": auc})
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default=str(HERE.parent / "runs" / "bench"
                                                   / "clothing_scenarios"))
    args = parser.parse_args(argv)
    tables = []
    for folder in sorted(Path(args.runs_dir).glob("*/seed*")):
        table = scenario_aucs(folder)
        table["run"] = f"{folder.parent.name}/{folder.name}"
        tables.append(table)
    if not tables:
        raise SystemExit(f"No run folders (<config>/seed<k>/) under {args.runs_dir}; run "
                         f"the suite first (python benchmarks/run.py --suite ...).")
    table = pd.concat(tables)
    wide = table.pivot_table(index=["task", "scenario", "rows"], columns="run",
                             values="auc").round(4)
    print(wide.to_string())


if __name__ == "__main__":
    main()
