"""A tuned model against the per-task gradient-boosted trees, on Census group 1.

1. `mtrec tune benchmarks/tune/census_mmoe.yaml` (an Optuna study on the
   validation split only; resumed, so a finished study runs no trial);
2. `mtrec train best.yaml` with each of `--seeds` (the test split is read
   here, once per seed; a seed whose run folder is complete is read back,
   not retrained);
3. writes `benchmarks/results/tuned_census.json`: the trials, the best
   values, the per-seed test metrics, and the HGB row of the census_g1
   record for comparison (`python benchmarks/report.py` puts it in
   RESULTS.md).

    python benchmarks/tuned.py [--seeds 1 2 3] [--trials 8] [--out runs/tune/census_mmoe]
    python benchmarks/tuned.py --config benchmarks/tune/census_mmoe_wide.yaml
        (--out runs/tune/<config name>, --output benchmarks/results/tuned_<config name>.json)
        [--also 'PLE={num_levels: 2, num_specific_experts: 2, num_shared_experts: 4}']

`--also NAME=ARGS` also trains the best config with another model, not
tuned for it: the model named, with the best trial's model arguments less
those the other model does not take, plus ARGS (YAML); everything else
(optimiser, regularisation, encodings) as the best trial. Recorded under
`also` with the same per-seed test metrics.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import records  # noqa: E402  (benchmarks/records.py)
from training_throughput import cpu_model  # noqa: E402

CONFIG = HERE / "tune" / "census_mmoe.yaml"
RESULT = records.RESULTS / "tuned_census.json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--trials", type=int, default=None,
                        help="default: the config's tune.trials")
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--out", default=None, help="default: runs/tune/<config name>")
    parser.add_argument("--output", default=None,
                        help="default: benchmarks/results/tuned_census.json for the default "
                             "config, else tuned_<config name>.json")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=ARGS",
                        help="also train the best config with model NAME and these "
                             "arguments (YAML), untuned, on the same seeds")
    args = parser.parse_args(argv)
    config = Path(args.config).resolve()
    args.out = args.out or f"runs/tune/{config.stem}"
    args.output = args.output or str(RESULT if config == CONFIG else
                                     records.RESULTS / f"tuned_{config.stem}.json")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from mtrec.experiments import runner
    from mtrec.experiments.config import load_config
    from mtrec.tuning.study import tune

    out = Path(args.out)
    result = tune(config, trials=args.trials, output_dir=out, log=print)
    best = load_config(out / "best.yaml")
    runs = seed_runs(runner, best, args.seeds, out.parent / f"{out.name}_best")
    also = []
    for spec in args.also:
        other = with_model(best, spec)
        also.append({"model": other.model.name, "args": other.model.args,
                     "runs": seed_runs(runner, other, args.seeds,
                                       out.parent / f"{out.name}_best_{other.model.name}")})
    trials = [{"number": t.number, "state": t.state.name, "value": t.value,
               "params": t.params} for t in result.study.trials]
    baseline = _hgb_row()
    summary = {"machine": platform.platform(), "cpu": cpu_model(),
               "config": str(config.relative_to(records.ROOT)),
               "best_values": result.best_values, "best_value": result.best_value,
               "trials": trials, "runs": runs, "also": also, "hgb": baseline}
    records.write_record(args.output, summary)
    for name, model_runs in [(best.model.name, runs)] + [(a["model"], a["runs"]) for a in also]:
        for run in model_runs:
            print(f"{name} seed {run['seed']}: " + ", ".join(
                f"{t} {m['auc']:.4f}" for t, m in run["test"].items()))
    if baseline:
        print("HGB (per task): " + ", ".join(f"{t} {a:.4f}" for t, a in baseline.items()))
    print(f"wrote {args.output}")


def seed_runs(runner, config, seeds, prefix):
    """Train `config` once per seed into `<prefix>_seed<N>` (a complete run
    folder is read back, not retrained); per-seed test AUCs."""
    runs = []
    for seed in seeds:
        folder = prefix.parent / f"{prefix.name}_seed{seed}"
        if not (folder / records_file()).is_file():
            runner.train(config.model_copy(update={"training": config.training.model_copy(
                update={"seed": seed})}), output_dir=folder, log=print)
        record = json.loads((folder / records_file()).read_text())
        runs.append({"seed": seed, "run": str(folder), "epochs_run": record["epochs_run"],
                     "train_seconds": record["train_seconds"],
                     "test": {task: {"auc": m.get("auc")}
                              for task, m in record["metrics"]["test"].items()}})
    return runs


def with_model(config, spec):
    """`config` with the model of `spec` (`"NAME=ARGS"`, ARGS a YAML mapping):
    the arguments of `config`'s model that NAME's class takes, then ARGS."""
    import inspect

    import yaml
    from mtrec.experiments.config import parse_config
    from mtrec.models import ALL_MODELS

    name, _, text = spec.partition("=")
    if name not in ALL_MODELS:
        raise SystemExit(f"--also {spec!r}: unknown model {name!r}; known: {sorted(ALL_MODELS)}")
    extra = yaml.safe_load(text) if text.strip() else {}
    if not isinstance(extra, dict):
        raise SystemExit(f"--also {spec!r}: the arguments after '=' must be a YAML mapping, "
                         f"e.g. PLE={{num_levels: 2}}")
    taken = inspect.signature(ALL_MODELS[name]).parameters
    args = {k: v for k, v in config.model.args.items() if k in taken}
    data = config.to_dict()
    data["model"] = {"name": name, "args": {**args, **extra}}
    return parse_config(data, source=f"--also {spec}")


def records_file():
    from mtrec.experiments.run_folder import RECORD_FILE
    return RECORD_FILE


def _hgb_row():
    """`{task: mean test AUC}` of the census_g1 record's HGB runs."""
    path = records.RESULTS / "census_g1.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    runs = ((record.get("baselines") or {}).get("hgb") or {}).get("runs") or []
    tasks = {}
    for run in runs:
        for task, metrics in run["metrics"]["test"].items():
            tasks.setdefault(task, []).append(metrics["auc"])
    return {task: sum(v) / len(v) for task, v in tasks.items()} or None


if __name__ == "__main__":
    main()
