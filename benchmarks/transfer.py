"""Adding a task to a trained model, against training it from scratch (Census-Income).

1. Train a group-1 model (income, marital; `--model` MMoE or SharedBottom,
   the sizes and optimiser of benchmarks/configs/census_income/<model>.yaml)
   with early stopping on the mean validation AUC.
2. For each labelled fraction of the training rows (`--fractions`, rows
   drawn without replacement with the run's seed), give the model the
   group-2 task `education` with `model.with_tasks(..., train_tasks=
   ["education"])` (the fine-tuning rows carry no income/marital labels)
   and fine-tune it with each `--freeze` setting; against it, the same
   architecture trained on `education` alone from scratch on the same rows
   (same features and preprocessing statistics, same optimiser).
   Fine-tuning and scratch training stop early on the validation split's
   education AUC (all its rows labelled; restored to the best epoch).
3. Report the education test AUC per fraction and method (and the old
   tasks' test AUC after each transfer: "backbone" keeps them exactly),
   write benchmarks/results/transfer.json (whole, atomically) and
   benchmarks/figures/transfer_curve.png.

Education is removed from the inputs in both groups (the paper's protocol,
`mtrec.data.census_income`), so it is a new label, not a feature.

    python benchmarks/transfer.py [--seeds 1 2 3] [--epochs 10] [--finetune-epochs 10]
        [--fractions 0.01 0.1 1] [--freeze backbone embeddings none] [--max-rows N]
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import records  # noqa: E402  (benchmarks/records.py)
from training_throughput import cpu_model  # noqa: E402

RESULT = records.RESULTS / "transfer.json"
FIGURE = HERE / "figures" / "transfer_curve.png"
#: Model sizes of benchmarks/configs/census_income/{mmoe,shared_bottom}.yaml.
MODEL_ARGS = {"MMoE": dict(num_experts=8, expert_units=[16], tower_units=[8]),
              "SharedBottom": dict(bottom_units=[128], tower_units=[8])}
LEARNING_RATE, BATCH_SIZE = 0.002, 1024
OLD_TASKS, NEW_TASK = ("income", "marital"), "education"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODEL_ARGS), default="MMoE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--freeze", nargs="+", default=["backbone", "embeddings", "none"],
                        choices=["backbone", "embeddings", "none"])
    parser.add_argument("--epochs", type=int, default=10,
                        help="most epochs of the group-1 model (the config's 10)")
    parser.add_argument("--finetune-epochs", type=int, default=10,
                        help="most epochs of each fine-tuning / scratch run")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=None,
                        help="read only this many training rows (smoke runs)")
    parser.add_argument("--output", default=str(RESULT))
    parser.add_argument("--figure", default=str(FIGURE))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.time()
    train, valid, test = census_frames(args.max_rows)
    print(f"census-income: {len(train)}/{len(valid)}/{len(test)} rows; group-1 tasks "
          f"{list(OLD_TASKS)}, new task {NEW_TASK!r}")
    runs, bases = [], []
    for seed in args.seeds:
        base, base_entry = train_base(args, train, valid, test, seed)
        bases.append(base_entry)
        for fraction in args.fractions:
            rows = subsample(train, fraction, seed)
            for freeze in args.freeze:
                runs.append(transfer_run(args, base, rows, valid, test, seed, fraction,
                                         freeze))
                print_run(runs[-1])
            runs.append(scratch_run(args, base.schema, rows, valid, test, seed, fraction))
            print_run(runs[-1])
    record = {"created": datetime.datetime.fromtimestamp(started).isoformat(),
              "command": "python benchmarks/transfer.py " + " ".join(argv or sys.argv[1:]),
              "machine": {"platform": platform.platform(), "cpu": cpu_model(),
                          "cpu_count": os.cpu_count(),
                          "load_average": list(os.getloadavg())},
              "git": git_commit(),
              "settings": {"model": args.model, "model_args": MODEL_ARGS[args.model],
                           "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
                           "epochs": args.epochs, "finetune_epochs": args.finetune_epochs,
                           "patience": args.patience, "fractions": args.fractions,
                           "freeze": args.freeze, "seeds": args.seeds,
                           "max_rows": args.max_rows,
                           "rows": {"train": len(train), "valid": len(valid),
                                    "test": len(test)}},
              "base": bases, "runs": runs, "summary": summarise(runs),
              "wall_seconds": round(time.time() - started, 1)}
    from mtrec.utils.atomic import write_text_atomic
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.output), json.dumps(record, indent=1, default=float))
    from report import transfer_section  # noqa: E402  (benchmarks/report.py renders it)
    print("\n".join(transfer_section(args.output)))
    plot(record, Path(args.figure))
    print(f"wrote {args.output} and {args.figure} ({record['wall_seconds'] / 60:.1f} min)")


def census_frames(max_rows):
    """Group-1 train/valid/test frames with group 2's `education` label
    added: the two groups are the same rows in the same split (same file,
    same split seed), differing only in their label columns."""
    from mtrec.data import census_income

    one = census_income.load(group=1, seed=0, max_rows=max_rows)
    two = census_income.load(group=2, seed=0, max_rows=max_rows)
    frames = []
    for a, b in zip(one, two):
        features = [c for c in a.columns if c not in OLD_TASKS]
        if not a[features].equals(b[features]) or not a["marital"].equals(b["marital"]):
            raise RuntimeError("census-income groups 1 and 2 are not the same rows.")
        frames.append(a.assign(**{NEW_TASK: b[NEW_TASK]}))
    return frames


def subsample(frame, fraction, seed):
    """`fraction` of the rows, drawn without replacement (seeded)."""
    import numpy as np

    if not 0 < fraction <= 1:
        raise ValueError(f"fractions must be in (0, 1], got {fraction}.")
    count = max(1, int(round(fraction * len(frame))))
    rows = np.random.default_rng([seed, int(fraction * 1e6)]).choice(
        len(frame), count, replace=False)
    return frame.iloc[np.sort(rows)].reset_index(drop=True)


def fit(model, train, valid, epochs, patience, seed):
    """Fit with early stopping on the validation education AUC (best epoch
    restored); batches of `BATCH_SIZE`, or smaller for few rows so that an
    epoch is at least 20 steps. Returns `(epochs run, seconds)`."""
    import keras
    import mtrec
    from mtrec.training.callbacks import early_stopping

    trained = [t for t in model.schema.tasks if t.name not in model.untrained_tasks]
    monitor = "mean" if len(trained) > 1 else trained[0].name
    if len(model.schema.tasks) == 1:
        monitor = "val_auc"     # Keras does not prefix a single output's metrics
    batch = int(min(BATCH_SIZE, max(32, len(train) // 20)))
    data = mtrec.data.from_pandas(train, model.schema, batch_size=batch, shuffle=True,
                                  seed=seed)
    valid_data = mtrec.data.from_pandas(valid, model.schema, batch_size=4096)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    start = time.time()
    history = model.fit(data, validation_data=valid_data, epochs=epochs, verbose=0,
                        callbacks=early_stopping(monitor, patience, tasks=trained))
    return len(history.history["loss"]), round(time.time() - start, 1)


def test_auc(model, test, tasks):
    """`{task: test AUC}`."""
    from mtrec.evaluation.metrics import auc

    predictions = model.predict(test, batch_size=4096, verbose=0)
    return {t: float(auc(test[t].to_numpy(), predictions[t])) for t in tasks}


def train_base(args, train, valid, test, seed):
    """The group-1 model (income, marital) and its record entry."""
    import keras
    import mtrec

    frame = train.drop(columns=[NEW_TASK])
    schema = mtrec.Schema.infer(frame, tasks={t: "binary" for t in OLD_TASKS},
                                verbose=False).adapt(frame)
    keras.utils.set_random_seed(seed)
    model = mtrec.models.MODELS[args.model](schema, **MODEL_ARGS[args.model])
    epochs, seconds = fit(model, frame, valid.drop(columns=[NEW_TASK]), args.epochs,
                          args.patience, seed)
    entry = {"seed": seed, "epochs_run": epochs, "train_seconds": seconds,
             "test_auc": test_auc(model, test, OLD_TASKS)}
    print(f"seed {seed}: group-1 {args.model}, {epochs} epochs, {seconds:.0f} s, test AUC "
          + ", ".join(f"{t} {a:.4f}" for t, a in entry["test_auc"].items()), flush=True)
    return model, entry


def only_new_labels(frame):
    return frame.drop(columns=list(OLD_TASKS))


def transfer_run(args, base, rows, valid, test, seed, fraction, freeze):
    """`base.with_tasks(education)`, fine-tuned on `rows`' education labels."""
    import keras
    import mtrec
    from mtrec.models.task_transfer import fill_missing_labels

    keras.utils.set_random_seed(seed)
    model = base.with_tasks(mtrec.TaskSpec(NEW_TASK), freeze=freeze,
                            train_tasks=[NEW_TASK])
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    epochs, seconds = fit(model, fill_missing_labels(model, only_new_labels(rows)),
                          fill_missing_labels(model, only_new_labels(valid)),
                          args.finetune_epochs, args.patience, seed)
    return {"method": f"transfer, freeze={freeze}", "seed": seed, "fraction": fraction,
            "rows": len(rows), "epochs_run": epochs, "train_seconds": seconds,
            "trainable_parameters": trainable,
            "test_auc": test_auc(model, test, (NEW_TASK,) + OLD_TASKS)}


def scratch_run(args, base_schema, rows, valid, test, seed, fraction):
    """The same architecture on education alone, trained from scratch on
    `rows` (the group-1 schema's features and statistics)."""
    import keras
    import mtrec

    schema = mtrec.Schema(base_schema.features, [mtrec.TaskSpec(NEW_TASK)],
                          stats={k: v for k, v in base_schema.stats.items()
                                 if not k.startswith("task:")})
    keras.utils.set_random_seed(seed)
    model = mtrec.models.MODELS[args.model](schema, **MODEL_ARGS[args.model])
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    epochs, seconds = fit(model, only_new_labels(rows), only_new_labels(valid),
                          args.finetune_epochs, args.patience, seed)
    return {"method": "scratch", "seed": seed, "fraction": fraction, "rows": len(rows),
            "epochs_run": epochs, "train_seconds": seconds,
            "trainable_parameters": trainable,
            "test_auc": test_auc(model, test, (NEW_TASK,))}


def print_run(run):
    print(f"  {run['fraction']:>6.0%} ({run['rows']:>6} rows) {run['method']:<28} "
          f"education AUC {run['test_auc'][NEW_TASK]:.4f}  ({run['epochs_run']} epochs, "
          f"{run['train_seconds']:.0f} s)", flush=True)


def summarise(runs):
    """`[{method, fraction, seeds, education_auc mean/std, old tasks' mean}]`."""
    import numpy as np

    out = []
    for key in dict.fromkeys((r["method"], r["fraction"]) for r in runs):
        group = [r for r in runs if (r["method"], r["fraction"]) == key]
        scores = np.array([r["test_auc"][NEW_TASK] for r in group])
        entry = {"method": key[0], "fraction": key[1], "rows": group[0]["rows"],
                 "seeds": [r["seed"] for r in group],
                 "education_auc": float(scores.mean()),
                 "education_auc_std": float(scores.std(ddof=1)) if len(scores) > 1 else None}
        for task in OLD_TASKS:
            if task in group[0]["test_auc"]:
                entry[f"{task}_auc"] = float(np.mean([r["test_auc"][task] for r in group]))
        out.append(entry)
    return out


def plot(record, path):
    """Education test AUC against the labelled fraction, one line per method,
    written whole (a temporary sibling renamed into place)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(s["method"] for s in record["summary"]):
        points = sorted((s["fraction"], s["education_auc"]) for s in record["summary"]
                        if s["method"] == method)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of training rows with an education label")
    ax.set_ylabel("education test AUC")
    s = record["settings"]
    ax.set_title(f"Census-Income: {s['model']} (income, marital) + education, "
                 f"{len(s['seeds'])} seed(s)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
    fig.savefig(partial, dpi=120)
    plt.close(fig)
    partial.replace(path)


def git_commit():
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=HERE,
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": dirty}


if __name__ == "__main__":
    main()
