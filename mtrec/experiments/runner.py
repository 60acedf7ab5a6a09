"""Train, evaluate and export from a run config (what `mtrec train` runs).

`train(config)` seeds everything, loads the dataset, infers and adapts the
schema on the training split, builds and compiles the model, fits with
early stopping on the validation split only, evaluates the validation and
the test split (the test split once, at the end) and writes a run folder:

    config.yaml   the resolved config (defaults filled in)
    schema.json   the adapted schema
    model.keras   the trained model (best validation epoch)
    metrics.json  the result record: git commit, versions, seed, config,
                  parameter count, epochs, timings (`train_seconds` is the
                  wall time of `fit`, per-epoch validation included),
                  per-task validation and test metrics, per-epoch history
                  (with the loss weights `weight_<task>`), gate summary
    metrics.md    the per-task test table
    gates.png     expert usage per gate (gated models only)

The record's provenance (versions, git state) is `mtrec.experiments.record`;
the tables are `mtrec.evaluation.tables`; scoring files with the saved
model is `mtrec.export.file_scoring` (`mtrec predict`).
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import json
import sys
import time
import warnings
from pathlib import Path

import keras
import pandas as pd

from mtrec.data.leakage import check_leakage
from mtrec.data.pandas_dataset import from_pandas
from mtrec.data.registry import dataset_arguments, load_dataset
from mtrec.evaluation import gate_diagnostics
from mtrec.evaluation.report import evaluate
from mtrec.evaluation.tables import format_table, markdown_table
from mtrec.experiments import record as run_record
from mtrec.experiments.config import OPTIMIZERS, RunConfig, check_task_references, load_config
from mtrec.export.file_scoring import load_model
from mtrec.models import ALL_MODELS as MODELS
from mtrec.schema import Schema
from mtrec.training import early_stopping, set_seed

__all__ = ["RunResult", "evaluate_model", "evaluate_run", "load_model", "train"]


@dataclasses.dataclass
class RunResult:
    """What `train` produced.

    Attributes:
        output_dir: pathlib.Path of the run folder.
        model: the trained model (best validation epoch's weights).
        schema: the adapted `mtrec.Schema`.
        valid: DataFrame, per-task validation metrics.
        test: DataFrame, per-task test metrics.
        record: dict, the content of `metrics.json`.
    """

    output_dir: Path
    model: keras.Model
    schema: Schema
    valid: pd.DataFrame
    test: pd.DataFrame
    record: dict


def train(config, output_dir=None, verbose=None, log=print, data=None, *,
          ignore_changes=()):
    """Run one training job described by a config.

    Args:
        config: `RunConfig`, or a path to a config YAML.
        output_dir: str or path; overrides `config.output_dir`.
        verbose: Keras `fit` verbosity; default 1 (progress bar) when
            stdout is a terminal, else 2 (one line per epoch).
        log: function printing progress lines; `None` to stay quiet.
        data: the `DatasetSplits` that `config.dataset` loads, when the
            caller already holds it (benchmarks reuse one across seeds and
            models); loaded here when `None`.
        ignore_changes: tuple of str. Path prefixes (from the repository
            root) whose changes do not make the record's git tree dirty,
            e.g. the result files a benchmark rewrites between its runs.
            Defaults to none: any changed tracked file makes it dirty.

    Returns:
        `RunResult`.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": str(output_dir)})
    log = log or (lambda *args, **kwargs: None)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    training = config.training
    started = datetime.datetime.now(datetime.timezone.utc)

    set_seed(training.seed)
    if data is None:
        data = load_dataset(config.dataset.name, **config.dataset.args)
    log(f"{data.description or config.dataset.name}: {len(data.train)} train / "
        f"{len(data.valid)} valid / {len(data.test)} test rows")
    specs = {spec.name: spec for spec in data.features if spec.name in data.train.columns}
    specs.update(config.schema_.feature_specs())
    schema = Schema.infer(data.train, tasks=data.tasks, exclude=config.schema_.exclude,
                          verbose=False, **specs)
    schema.adapt(data.train)
    # Refuse label copies among the features; warn on near-perfect ones.
    check_leakage(data.train, schema)
    check_task_references(config, schema.task_names)
    log(repr(schema))

    model = MODELS[config.model.name](schema, **config.model.args)
    optimizer = getattr(keras.optimizers, OPTIMIZERS[training.optimizer])(
        learning_rate=training.learning_rate)
    model.compile(optimizer=optimizer,
                  loss_weighting=training.loss_weighting_argument(),
                  loss_weights=dict(training.loss_weights) or None)
    parameters = int(model.count_params())
    log(f"{config.model.name}: {parameters:,} parameters")

    train_data = from_pandas(data.train, schema, batch_size=training.batch_size,
                             shuffle=True, seed=training.seed)
    valid_data = from_pandas(data.valid, schema, batch_size=config.evaluation.batch_size)
    callbacks = []
    if training.early_stopping is not None:
        # Model selection on the validation split only.
        callbacks = early_stopping(training.early_stopping.monitor,
                                   patience=training.early_stopping.patience,
                                   tasks=schema.tasks)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    fit_start = time.perf_counter()
    history = model.fit(train_data, validation_data=valid_data, epochs=training.epochs,
                        callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - fit_start
    epochs_run = len(history.epoch)
    stopper = next((c for c in callbacks
                    if isinstance(c, keras.callbacks.EarlyStopping)), None)
    best_epoch = (int(stopper.best_epoch) + 1
                  if stopper is not None and stopper.best_weights is not None else None)

    group_column = config.evaluation.group_column or data.group_column
    valid_report = evaluate_model(model, data.valid, group_column,
                                  config.evaluation.batch_size)
    # The test split is evaluated once, here, after model selection.
    eval_start = time.perf_counter()
    test_report = evaluate_model(model, data.test, group_column,
                                 config.evaluation.batch_size)
    eval_seconds = time.perf_counter() - eval_start

    resolved = config.model_copy(update={"output_dir": str(out)})
    resolved.to_yaml(out / "config.yaml")
    schema.to_json(out / "schema.json", indent=1)
    model.save(out / "model.keras")
    gate_summary = _gate_heatmap(model, valid_data, out / "gates.png", log)

    record = {
        "record_version": run_record.RECORD_VERSION,
        "created": started.isoformat(timespec="seconds"),
        "git": run_record.git_state(ignore=ignore_changes),
        "versions": run_record.versions(),
        "seed": training.seed,
        "config": resolved.to_dict(),
        "dataset": {"name": config.dataset.name, "description": data.description,
                    "args": _dataset_arguments(config),
                    "rows": {"train": len(data.train), "valid": len(data.valid),
                             "test": len(data.test)},
                    "group_column": group_column},
        "model_class": type(model).__name__,
        "parameters": parameters,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "stopped_early": bool(stopper is not None and stopper.stopped_epoch > 0),
        "train_seconds": round(train_seconds, 3),
        "test_eval_seconds": round(eval_seconds, 3),
        "metrics": {"valid": run_record.report_to_dict(valid_report),
                    "test": run_record.report_to_dict(test_report)},
        "history": run_record.history_records(history.history),
        "gates": gate_summary,
    }
    (out / "metrics.json").write_text(json.dumps(run_record.jsonable(record), indent=1),
                                      encoding="utf-8")
    title = (f"{config.model.name} on {config.dataset.name} "
             f"({data.description or config.dataset.name})")
    notes = (f"{parameters:,} parameters; {epochs_run} epoch(s) run"
             f"{f', best validation epoch {best_epoch}' if best_epoch else ''}; "
             f"training {train_seconds:.1f} s; seed {training.seed}; "
             f"git {record['git'].get('commit') or 'unknown'}")
    (out / "metrics.md").write_text(
        f"# {title}\n\nTest split, one row per task. {notes}.\n\n"
        f"{markdown_table(test_report)}\n", encoding="utf-8")

    log(f"\nTest set ({len(data.test)} rows, best validation epoch "
        f"{best_epoch or epochs_run} of {epochs_run}, {train_seconds:.1f} s training):")
    log(format_table(test_report))
    log(f"\nWrote {out}/: config.yaml schema.json model.keras metrics.json metrics.md"
        f"{' gates.png' if gate_summary else ''}")
    return RunResult(out, model, schema, valid_report, test_report, record)


def evaluate_model(model, frame, group_column=None, batch_size=4096):
    """Per-task metrics of `model` on a DataFrame.

    Args:
        model: an mtrec model.
        frame: DataFrame with the model's feature and label columns.
        group_column: str. Column of group ids (usually the user id) for
            GAUC; it need not be a feature.
        batch_size: int. Rows per evaluation batch.

    Returns:
        DataFrame, one row per task (see `mtrec.evaluate`).
    """
    dataset = from_pandas(frame, model.schema, batch_size=batch_size)
    groups = None
    if group_column is not None:
        if group_column not in frame.columns:
            raise ValueError(
                f"evaluation.group_column '{group_column}' is not a column of the "
                f"data; columns: {list(frame.columns)}.")
        groups = frame[group_column].to_numpy()
    return evaluate(model, dataset, groups=groups)


def evaluate_run(model, config):
    """Test-split metrics of a saved model on a config's dataset (what
    `mtrec evaluate` prints).

    Args:
        model: an mtrec model, e.g. from `load_model(run_folder)`.
        config: `RunConfig`; its dataset, evaluation group column and
            batch size are used.

    Returns:
        `(report, data)`: the per-task DataFrame and the `DatasetSplits`.
    """
    data = load_dataset(config.dataset.name, **config.dataset.args)
    report = evaluate_model(model, data.test,
                            config.evaluation.group_column or data.group_column,
                            config.evaluation.batch_size)
    return report, data


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _dataset_arguments(config):
    """The dataset's arguments with defaults filled in (for the record)."""
    accepted = dataset_arguments(config.dataset.name)
    resolved = {name: default for name, default in accepted.items()
                if default is not inspect.Parameter.empty}
    return {**resolved, **config.dataset.args}


def _gate_heatmap(model, data, path, log):
    """Write the gate heatmap of a gated model to `path`; a summary dict
    for the record, or None for a model without gates."""
    if path.exists():
        path.unlink()  # never leave a stale heatmap from an earlier run
    if not model.gate_structure():
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = gate_diagnostics.gates(model, data, plot_path=path)
        for warning in caught:
            log(f"warning: {warning.message}")
    except Exception as error:  # diagnostics must never lose a finished run
        log(f"warning: gate diagnostics failed ({type(error).__name__}: {error}); "
            f"no gates.png written.")
        return None
    normalized = report.entropy["normalized_entropy"]
    return {
        "plot": path.name if path.exists() else None,
        "num_examples": report.num_examples,
        "collapsed": [list(c) for c in report.collapsed],
        "normalized_entropy": {f"{level}/{gate}": value
                               for (level, gate), value in normalized.items()},
    }
