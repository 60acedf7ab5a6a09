"""One-off: convert the records of the retired run_suite.sh / suite_report.py
pipeline (movielens_funnel, movielens_ratings, clothing_reviews) to the one
record shape of benchmarks/records.py, and add the row `name` to the entries
of the run.py records (census_g1, census_g2, synthetic).

Numbers are copied from the existing records unchanged; what the old
records did not hold (validation metrics, histories, versions, wall times)
is left empty or None. The model class of a legacy row comes from its
config file.

    python benchmarks/convert_records.py benchmarks/results
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records  # noqa: E402
import suites  # noqa: E402

LEGACY = {"movielens_funnel": "bash benchmarks/run_suite.sh movielens_funnel "
                              "ctr:auc,cvr:auc,ctcvr:auc,ctr:gauc,ctcvr:gauc 1 2 3",
          "clothing_reviews": "bash benchmarks/run_suite.sh clothing_reviews "
                              "recommended:auc,recommended:logloss,rating:rmse,rating:mae "
                              "1 2 3",
          "movielens_ratings": "bash benchmarks/run_suite.sh movielens_ratings "
                               "like:auc,like:gauc,rating:rmse,rating:mae 1 2 3"}


def convert_legacy(suite_name, old):
    from mtrec.experiments.config import load_config

    suite = suites.load_suite(suite_name)
    runs = []
    for stem, entries in old["runs"].items():
        path = suite.config_dir / f"{stem}.yaml"
        model = load_config(path).model.name
        for r in entries:
            runs.append({
                "name": stem, "model": model, "variant": None, "seed": r["seed"],
                "tune": None, "config_path": str(path.relative_to(records.ROOT)),
                "overrides": [f"training.seed={r['seed']}"],
                "run_dir": f"runs/{suite_name}/{stem}_seed{r['seed']}",
                "git": r.get("git"), "versions": None, "config": None, "dataset": None,
                "parameters": r["parameters"], "epochs_run": r["epochs_run"],
                "best_epoch": None, "stopped_early": None,
                "train_seconds": r["train_seconds"], "wall_seconds": None,
                "metrics": {"test": r["test"]}, "history": []})
    return {"suite": suite_name, "description": suite.description, "smoke": False,
            "created": None, "finished": None, "command": LEGACY[suite_name],
            "machine": {"platform": old["machine"], "cpu_count": old["cpu_count"]},
            "seeds": sorted({r["seed"] for r in runs}), "jobs": 1, "wall_seconds": None,
            "converted_from": "benchmarks/run_suite.sh + benchmarks/suite_report.py "
                              f"record (columns {old['columns']})",
            "runs": records.sort_runs(runs)}


def add_names(record):
    for entry in record["runs"] + (record.get("tuning") or {}).get("runs", []):
        entry.setdefault("name", entry["model"])
    return record


def main(results_dir):
    for path in sorted(Path(results_dir).glob("*.json")):
        old = records.read_record(path)
        if path.stem in LEGACY and isinstance(old.get("runs"), dict):
            records.write_record(path, convert_legacy(path.stem, old))
        elif path.stem in ("census_g1", "census_g2", "synthetic"):
            records.write_record(path, add_names(old))
        else:
            continue
        print(f"converted {path}")


if __name__ == "__main__":
    main(sys.argv[1])
