"""Train, evaluate and export from a run config (what `mtrec train` runs).

`train(config)` seeds everything, loads the dataset, infers and adapts the
schema on the training split, builds and compiles the model, fits with
early stopping on the validation split only (checkpointing as it goes, so
a rerun after a kill or Ctrl-C resumes; a non-finite loss stops it),
evaluates the validation and the test split (the test split once, at the
end; not at all with `evaluate_test=False`, as for `mtrec tune`'s trials)
and writes a run folder, whole, by renaming a finished temporary
folder into place (`mtrec.experiments.run_folder`):

    config.yaml   the resolved config (defaults filled in)
    schema.json   the adapted schema
    model.keras   the trained model (best validation epoch)
    metrics.json  the result record: git commit, versions, seed, config,
                  parameter count, epochs, timings (`train_seconds` is the
                  wall time of `fit`, per-epoch validation included),
                  per-task validation and test metrics (test null when
                  not evaluated), per-epoch history
                  (with the loss weights `weight_<task>`), gate summary,
                  `resumed_from` ({epoch, step} or null) and `chance_level`
                  ({task: reason} of tasks no better than chance)
    metrics.md    the per-task test table (validation, without a test)
    gates.png     expert usage per gate (gated models only)
    logs/         TensorBoard logs (`training.tensorboard`, on by default;
                  while training they are in `OUT.work/logs/`)

With `training.strategy` mirrored or multi_worker
(`mtrec.training.distribution`) the model trains under that strategy; every
worker runs `train`, only the chief writes, and the evaluation and the
saved model are a plain copy of the trained one.

The record's provenance (versions, git state) is `mtrec.experiments.record`;
the tables are `mtrec.evaluation.tables`; scoring files with the saved
model is `mtrec.export.file_scoring` (`mtrec predict`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import inspect
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data.pandas_dataset import from_pandas
from mtrec.data.registry import dataset_arguments
from mtrec.evaluation import gate_diagnostics
from mtrec.evaluation.report import evaluate, predict_with_labels
from mtrec.evaluation.tables import format_table, markdown_table
from mtrec.experiments import record as run_record
from mtrec.experiments import run_folder
from mtrec.experiments.config import OPTIMIZERS, RunConfig, check_task_references, load_config
from mtrec.experiments.run_inputs import run_input
from mtrec.export.file_scoring import load_model
from mtrec.models import ALL_MODELS as MODELS
from mtrec.schema import Schema
from mtrec.training import checkpoints, distribution, early_stopping, schedules, set_seed
from mtrec.training.callbacks import StopOnNonFiniteLoss

# A binary task whose validation AUC is at most 0.5 + this is at chance.
CHANCE_AUC_MARGIN = 0.01
# The TensorBoard logs, in the work folder while training, then the run folder.
TENSORBOARD_DIR = "logs"

__all__ = ["RunResult", "chance_level", "evaluate_model", "evaluate_run", "load_model", "train"]


@dataclasses.dataclass
class RunResult:
    """What `train` produced.

    Attributes:
        output_dir: pathlib.Path of the run folder.
        model: the trained model (best validation epoch's weights).
        schema: the adapted `mtrec.Schema`.
        valid: DataFrame, per-task validation metrics.
        test: DataFrame, per-task test metrics; None when the test split
            was not evaluated (`evaluate_test=False`).
        record: dict, the content of `metrics.json`.
    """

    output_dir: Path
    model: keras.Model
    schema: Schema
    valid: pd.DataFrame
    test: pd.DataFrame
    record: dict


def train(config, output_dir=None, verbose=None, log=print, data=None, *,
          ignore_changes=(), overwrite=False, resume=True, callbacks=(),
          evaluate_test=True):
    """Run one training job described by a config.

    The run folder is written whole (see `mtrec.experiments.run_folder`):
    checkpoints go to `OUT.work/` while training, the artefacts to
    `OUT.partial-<pid>/`, renamed to `OUT` at the end. Rerunning an
    interrupted run resumes from its last checkpoint.

    Args:
        config: `RunConfig`, or a path to a config YAML.
        output_dir: str or path; overrides `config.output_dir`. When both
            are unset, `runs/<dataset>-<model>-<timestamp>`.
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
        overwrite: bool. Replace an existing run in the output folder (by
            the final rename, once the new run is complete). Defaults to
            False: an existing run is an error, raised before data loads.
        resume: bool. Resume from the checkpoints of an interrupted run of
            the same config (`mtrec train --restart` is `resume=False`:
            discard them). Defaults to True.
        callbacks: extra Keras callbacks for `fit`, run after mtrec's own.
        evaluate_test: bool. Evaluate the test split after model selection.
            `mtrec tune` passes False: a trial is judged on the validation
            split only, and the test split stays unseen until the best
            config is trained (`metrics.json` then has `test: null`).
            Defaults to True.

    Returns:
        `RunResult`.

    Raises:
        RunFolderError: the output folder holds a run and not `overwrite`,
            or checkpoints of another config and `resume`.
        TrainingDiverged: a non-finite loss; the last good checkpoint is
            kept, nothing is written to the run folder.
        TrainingInterrupted: Ctrl-C, after saving a checkpoint.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": str(output_dir)})
    log = log or (lambda *args, **kwargs: None)
    training = config.training
    worker = distribution.role(training.strategy)
    if training.strategy == "multi_worker" and config.output_dir is None:
        raise ValueError("A multi_worker run needs output_dir (or --output): every "
                         "worker must name the same run folder.")
    fingerprint = run_folder.config_fingerprint(config)
    if config.output_dir is None:
        config = config.model_copy(update={"output_dir": str(
            run_folder.default_output_dir(config, fingerprint))})
    # Relative file paths are relative to where the run starts; recorded whole.
    config = config.model_copy(update={"dataset": config.dataset.with_paths_under(Path.cwd())})
    out = Path(config.output_dir)
    folder = run_folder.RunFolder(out)
    if worker.is_chief:
        # Before any data is loaded: refuse an existing run, claim the work folder.
        resuming = folder.prepare(fingerprint, overwrite=overwrite, resume=resume)
    else:
        # The other workers write nothing; they resume from the chief's checkpoints.
        resuming = resume and folder.checkpoints.is_dir()
        log = _prefixed(log, f"[worker {worker.index}] ")
    # Before any other TF op: MultiWorkerMirroredStrategy configures the
    # collectives at start-up.
    strategy = distribution.make_strategy(training.strategy)
    replicas = strategy.num_replicas_in_sync
    started = datetime.datetime.now(datetime.timezone.utc)

    set_seed(training.seed)
    if data is None:
        data = config.dataset.load()
    source = run_input(data)
    frame = source.infer_frame()
    if not source.streamed:
        rows = source.rows()
        log(f"{data.description or config.dataset.label}: {rows['train']} train / "
            f"{rows['valid']} valid / {rows['test']} test rows")
    else:
        log(f"{data.description or config.dataset.label}; schema inferred on "
            f"the first {len(frame):,} train rows")
    specs = {spec.name: spec for spec in data.features if spec.name in frame.columns}
    specs.update(config.schema_.feature_specs())
    schema = Schema.infer(frame, tasks=data.tasks, exclude=config.schema_.exclude,
                          verbose=False, **specs)
    if config.schema_.defaults:
        schema = Schema(config.schema_.with_defaults(schema.features), schema.tasks)
    source.adapt(schema, training.seed, log)
    if source.streamed:
        rows = source.rows()
        log(f"{rows['train']:,} train / {rows['valid']:,} valid / {rows['test']:,} test rows")
    check_task_references(config, schema.task_names,
                          {task.name: task.kind for task in schema.tasks})
    # Every worker adapts on the same rows (deterministically); the others
    # check theirs against the chief's record, when it has written one.
    folder.check_schema(_schema_fingerprint(schema), write=worker.is_chief)
    log(repr(schema))

    # A fresh dataset (its own shuffle generator) per fit: two when resuming
    # mid-epoch, else one. Its steps per epoch also set the schedule's length.
    stream = source.train_stream(schema, training.batch_size * replicas, training.seed,
                                 strategy, worker, training.strategy)
    with strategy.scope():
        model = MODELS[config.model.name](schema, **config.model.args)
        optimizer = _optimizer(training, stream)
        # XLA is left to single-process runs: collectives under jit_compile
        # are not what tf.distribute tests on CPU.
        model.compile(optimizer=optimizer,
                      loss_weighting=training.loss_weighting_argument(),
                      loss_weights=dict(training.loss_weights) or None,
                      steps_per_execution=training.steps_per_execution or "auto",
                      **({} if training.strategy == "none" else {"jit_compile": False}))
    parameters = int(model.count_params())
    log(f"{config.model.name}: {parameters:,} parameters")
    if training.strategy != "none":
        log(f"Strategy {training.strategy}: {replicas} replica(s) in sync, "
            f"{worker.num_workers} worker(s), global batch {training.batch_size} x "
            f"{replicas} = {training.batch_size * replicas}.")

    valid_data = source.valid_batches(schema, config.evaluation.batch_size, training.strategy)
    run_callbacks = []
    if training.early_stopping is not None:
        # Model selection on the validation split only.
        run_callbacks = early_stopping(training.early_stopping.monitor,
                                       patience=training.early_stopping.patience,
                                       tasks=schema.tasks)
    stopper = next((c for c in run_callbacks
                    if isinstance(c, keras.callbacks.EarlyStopping)), None)

    checkpoint = checkpoints.latest_checkpoint(folder.checkpoints) if resuming else None
    resumed_from = (None if checkpoint is None
                    else {"epoch": checkpoint.epoch, "step": checkpoint.step})
    if checkpoint is not None:
        log(f"Resuming from {checkpoint.path}: {checkpoint.epoch} epoch(s) done"
            f"{f', {checkpoint.step} step(s) into epoch {checkpoint.epoch + 1}' if checkpoint.step else ''}.")
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    saver = checkpoints.TrainingCheckpoint(
        folder.checkpoints, every_steps=training.checkpoint_every_steps,
        early_stopping=stopper, epochs=training.epochs, write=worker.is_chief)
    guard = StopOnNonFiniteLoss(
        [t.name for t in schema.tasks if t.name not in model.untrained_tasks],
        checkpoints=folder.checkpoints)
    run_callbacks += [guard, saver]
    if training.tensorboard and worker.is_chief:
        run_callbacks.append(keras.callbacks.TensorBoard(
            log_dir=str(folder.work / TENSORBOARD_DIR), update_freq="epoch"))
    run_callbacks += list(callbacks)
    with checkpoints.interrupt_saves_checkpoint(saver):
        while True:
            if checkpoint is not None:
                with strategy.scope():  # restoring builds the optimizer's variables
                    restored = checkpoint.restore(model, early_stopping=stopper)
                saver.resume_from(checkpoint, restored)
                guard.step_offset = checkpoint.step
            epoch, step = (checkpoint.epoch, checkpoint.step) if checkpoint else (0, 0)
            # An early-stopped or complete run (killed while writing) trains no more.
            last = training.epochs if checkpoint is None or not checkpoint.finished else epoch
            if step:
                # The rest of an interrupted epoch is a fit of its own (Keras'
                # epochs all have steps_per_epoch steps); then on from its end.
                last = epoch + 1
            batches = stream.at(epoch, step)
            _fit_steps_per_execution(model, training, stream.steps_per_epoch, log)
            model.fit(batches, validation_data=valid_data,
                      steps_per_epoch=stream.steps_per_epoch - step,
                      initial_epoch=min(epoch, last), epochs=last,
                      callbacks=run_callbacks, verbose=verbose)
            if not step:
                break
            checkpoint = checkpoints.latest_checkpoint(folder.checkpoints)
    train_seconds = saver.train_seconds
    history = saver.history
    epochs_run = len(history)
    best_epoch = (int(stopper.best_epoch) + 1
                  if stopper is not None and stopper.best_weights is not None else None)
    if not worker.is_chief:
        log(f"Trained {epochs_run} epoch(s) in {train_seconds:.1f} s; the chief "
            f"evaluates and writes {out}.")
        return RunResult(out, model, schema, None, None, {})
    if training.strategy != "none":
        # Evaluate, diagnose and save a plain copy: predicting under the
        # strategy would shard the rows across workers that have stopped.
        model = _outside_strategy(model, folder.work)
        valid_data = source.valid_batches(schema, config.evaluation.batch_size)

    group_column = config.evaluation.group_column or data.group_column
    valid_report = source.report(model, "valid", group_column, config.evaluation.batch_size)
    chance = chance_level(model, valid_report, valid_data)
    for task, reason in chance.items():
        log(f"WARNING: task '{task}' is no better than chance on the validation "
            f"split ({reason}); the model has not learned it (diverged or saturated "
            f"training?). The run is kept; see metrics.json 'chance_level'.")
    # The test split is evaluated once, here, after model selection (and
    # never for a tuning trial).
    test_report, eval_seconds = None, None
    if evaluate_test:
        eval_start = time.perf_counter()
        test_report = source.report(model, "test", group_column, config.evaluation.batch_size)
        eval_seconds = round(time.perf_counter() - eval_start, 3)

    resolved = config.model_copy(update={"output_dir": str(out)})
    partial = folder.begin_partial()
    try:
        if (folder.work / TENSORBOARD_DIR).is_dir():
            shutil.copytree(folder.work / TENSORBOARD_DIR, partial / TENSORBOARD_DIR)
        record = _write_run(partial, model, schema, resolved, data, valid_data, {
            "record_version": run_record.RECORD_VERSION,
            "created": started.isoformat(timespec="seconds"),
            "git": run_record.git_state(ignore=ignore_changes),
            "versions": run_record.versions(),
            "seed": training.seed,
            "config": resolved.to_dict(),
            "dataset": {"name": config.dataset.label, "description": data.description,
                        "args": _dataset_arguments(config),
                        "rows": rows, "streamed": source.streamed,
                        "group_column": group_column},
            "model_class": type(model).__name__,
            "parameters": parameters,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "stopped_early": bool(stopper is not None and stopper.stopped_epoch > 0),
            "resumed_from": resumed_from,
            "strategy": {"name": training.strategy, "replicas": replicas,
                         "workers": worker.num_workers,
                         "global_batch_size": training.batch_size * replicas},
            "train_seconds": round(train_seconds, 3),
            "test_eval_seconds": eval_seconds,
            "metrics": {"valid": run_record.report_to_dict(valid_report),
                        "test": (None if test_report is None
                                 else run_record.report_to_dict(test_report))},
            "chance_level": chance,
            "history": run_record.history_records(_by_key(history)),
        }, test_report if test_report is not None else valid_report, log)
        folder.publish()
    except BaseException:
        folder.discard_partial()
        raise

    shown, split = ((test_report, "test") if test_report is not None
                    else (valid_report, "valid"))
    log(f"\n{'Test' if test_report is not None else 'Validation'} set ({rows[split]} rows, "
        f"best validation epoch {best_epoch or epochs_run} of {epochs_run}, "
        f"{train_seconds:.1f} s training):")
    log(format_table(shown))
    log(f"\nWrote {out}/: config.yaml schema.json model.keras metrics.json metrics.md"
        f"{' gates.png' if record['gates'] else ''}"
        f"{' logs/' if (out / TENSORBOARD_DIR).is_dir() else ''}")
    return RunResult(out, model, schema, valid_report, test_report, record)


def _write_run(partial, model, schema, config, data, valid_data, record, table, log):
    """Write every artefact into the partial folder, the record last; returns
    the record (with its gate summary). `table` is the test report, or the
    validation report when the test split was not evaluated."""
    config.to_yaml(partial / "config.yaml")
    schema.to_json(partial / "schema.json", indent=1)
    run_folder.save_model_atomic(model, partial / "model.keras")
    record["gates"] = _gate_heatmap(model, valid_data, partial / "gates.png", log)
    title = (f"{config.model.name} on {config.dataset.label} "
             f"({data.description or config.dataset.label})")
    best_epoch, epochs_run = record["best_epoch"], record["epochs_run"]
    notes = (f"{record['parameters']:,} parameters; {epochs_run} epoch(s) run"
             f"{f', best validation epoch {best_epoch}' if best_epoch else ''}"
             f"{_resumed_note(record['resumed_from'])}; "
             f"training {record['train_seconds']:.1f} s; seed {record['seed']}; "
             f"git {record['git'].get('commit') or 'unknown'}")
    warning = "".join(f"\n**Warning: task {task} is no better than chance on the "
                      f"validation split ({reason}).**\n"
                      for task, reason in record["chance_level"].items())
    split = ("Test split" if record["metrics"]["test"] is not None else
             "Validation split (the test split was not evaluated: evaluate_test=False, "
             "as for mtrec tune's trials)")
    (partial / "metrics.md").write_text(
        f"# {title}\n\n{split}, one row per task. {notes}.\n{warning}\n"
        f"{markdown_table(table)}\n", encoding="utf-8")
    run_folder.write_text_atomic(partial / run_folder.RECORD_FILE,
                                 json.dumps(run_record.jsonable(record), indent=1))
    return record


def chance_level(model, report, data, margin=CHANCE_AUC_MARGIN):
    """Tasks whose validation metrics are no better than chance.

    A binary task with AUC <= 0.5 + `margin` (constant predictions have AUC
    0.5), or any task whose predictions are constant over the split.

    Args:
        model: the trained model.
        report: its per-task validation report (`evaluate_model`).
        data: the validation dataset (for the predictions' spread).
        margin: float. AUC margin above 0.5 still counted as chance.

    Returns:
        dict `{task: reason}`, empty when every task learned something.
    """
    problems = {}
    predictions, _ = predict_with_labels(model, data)
    for task, row in report.iterrows():
        spread = float(np.ptp(np.asarray(predictions[task], np.float64), axis=0).max())
        auc = row.get("auc")
        if spread <= 1e-7:
            problems[str(task)] = f"its predictions are constant ({spread:.2g} spread)"
        elif auc is not None and np.isfinite(auc) and auc <= 0.5 + margin:
            problems[str(task)] = f"AUC {auc:.4f} <= 0.5 + {margin}"
    return problems


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
    data = config.dataset.load()
    report = run_input(data).report(model, "test",
                                    config.evaluation.group_column or data.group_column,
                                    config.evaluation.batch_size)
    return report, data


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _dataset_arguments(config):
    """The dataset's arguments with defaults filled in (for the record);
    for files, the files, split rule, format and read options."""
    if config.dataset.files is not None:
        return config.dataset.model_dump(mode="json", exclude={"name", "args"})
    accepted = dataset_arguments(config.dataset.name)
    resolved = {name: default for name, default in accepted.items()
                if default is not inspect.Parameter.empty}
    return {**resolved, **config.dataset.args}


def _optimizer(training, stream):
    """The run's optimizer: its learning-rate schedule over every epoch's
    steps (`stream`'s), and its weight decay when one is set."""
    schedule = training.learning_rate_schedule
    steps_per_epoch = 0 if schedule.name == "constant" else stream.length()
    rate = schedules.learning_rate(
        training.learning_rate, schedule.name, total_steps=training.epochs * steps_per_epoch,
        warmup_steps=round(schedule.warmup_epochs * steps_per_epoch),
        final_fraction=schedule.final_fraction)
    decay = {} if training.weight_decay is None else {"weight_decay": training.weight_decay}
    return getattr(keras.optimizers, OPTIMIZERS[training.optimizer])(
        learning_rate=rate, **decay)


def _fit_steps_per_execution(model, training, steps_per_epoch, log):
    """Set the model's steps per execution to the largest divisor of the
    epoch's steps that is at most the one asked (`training.steps_per_execution`);
    None leaves it to the model's `"auto"` (`mtrec.training.steps_per_execution`,
    which also divides the epoch's steps and `checkpoint_every_steps`).

    Keras runs whole executions: with 6 steps per epoch and 4 per
    execution an epoch trains 8 steps, taking 2 from the next epoch's
    stream (so epoch k would no longer be the k-th pass). With a divisor,
    every checkpoint (saved at an execution's end) is at a multiple of it,
    so a resumed epoch's remaining steps divide too.
    """
    requested = training.steps_per_execution
    if requested is None:
        return   # "auto": the model's fit chooses (and validates one batch per call)
    chosen = max(d for d in range(1, min(requested, steps_per_epoch) + 1)
                 if steps_per_epoch % d == 0)
    if chosen != requested and model.steps_per_execution != chosen:
        log(f"steps_per_execution {requested} does not divide the {steps_per_epoch} "
            f"steps per epoch; using {chosen}.")
    model.steps_per_execution = chosen


def _outside_strategy(model, work):
    """A copy of `model` (weights, compile state) whose variables belong to
    no strategy, through a `.keras` file in the work folder."""
    path = work / "trained-under-strategy.keras"
    run_folder.save_model_atomic(model, path)
    try:
        return load_model(path)
    finally:
        path.unlink(missing_ok=True)


def _prefixed(log, prefix):
    return lambda *args, **kwargs: log(prefix + " ".join(map(str, args)), **kwargs)


def _schema_fingerprint(schema):
    text = json.dumps(schema.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _by_key(epochs):
    """One dict per epoch -> Keras' `{key: [value per epoch]}`."""
    keys = list(dict.fromkeys(k for epoch in epochs for k in epoch))
    return {k: [epoch.get(k) for epoch in epochs] for k in keys}


def _resumed_note(resumed_from):
    if not resumed_from:
        return ""
    step = resumed_from["step"]
    return (f"; resumed after epoch {resumed_from['epoch']}"
            f"{f' + {step} step(s)' if step else ''}")


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
