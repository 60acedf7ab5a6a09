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
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import json
import math
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd

import mtrec
from mtrec.experiments.config import OPTIMIZERS, RunConfig, load_config
from mtrec.data.pandas_dataset import from_pandas
from mtrec.data.registry import dataset_arguments, load_dataset
from mtrec.data.leakage import check_leakage
from mtrec.models import ALL_MODELS as MODELS
from mtrec.schema import Schema
from mtrec.training import early_stopping, set_seed

__all__ = ["RunResult", "evaluate_model", "format_table", "load_model", "train"]

RECORD_VERSION = 1
# Columns of the printed and Markdown test tables (those present).
TABLE_COLUMNS = ("kind", "count", "positive_rate", "auc", "gauc", "logloss",
                 "calibration", "ece", "rmse", "mae", "accuracy")


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


def train(config, output_dir=None, verbose=None, log=print, data=None):
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
    _check_task_references(config, schema)
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
        "record_version": RECORD_VERSION,
        "created": started.isoformat(timespec="seconds"),
        "git": _git_state(),
        "versions": _versions(),
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
        "metrics": {"valid": _report_to_dict(valid_report),
                    "test": _report_to_dict(test_report)},
        "history": _history_records(history.history),
        "gates": gate_summary,
    }
    (out / "metrics.json").write_text(json.dumps(_jsonable(record), indent=1),
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
    """Per-task metrics of `model` on a DataFrame (with group ids for GAUC
    when `group_column` is set and `mtrec.evaluate` takes them)."""
    dataset = from_pandas(frame, model.schema, batch_size=batch_size)
    kwargs = {}
    if group_column is not None:
        if group_column not in frame.columns:
            raise ValueError(
                f"evaluation.group_column '{group_column}' is not a column of the "
                f"data; columns: {list(frame.columns)}.")
        parameters = inspect.signature(mtrec.evaluate).parameters
        if "groups" in parameters:
            kwargs["groups"] = frame[group_column].to_numpy()
        elif "group_column" in parameters:
            return mtrec.evaluate(model, frame, group_column=group_column)
    return mtrec.evaluate(model, dataset, **kwargs)


def load_model(path):
    """A saved mtrec model from a `.keras` file or a run folder holding
    `model.keras`."""
    path = Path(path)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ValueError(f"{path} is a folder without model.keras; pass a .keras "
                             f"file or a run folder written by `mtrec train`.")
        path = path / "model.keras"
    if not path.is_file():
        raise ValueError(f"Model file {path} does not exist.")
    if path.suffix != ".keras":
        raise ValueError(f"{path} is not a .keras file.")
    return keras.saving.load_model(path)


def format_table(report):
    """The per-task report as fixed-width text."""
    columns = [c for c in TABLE_COLUMNS if c in report.columns]
    with pd.option_context("display.width", 160, "display.precision", 4,
                           "display.max_columns", 30):
        return report[columns].to_string(float_format=lambda v: f"{v:.4f}")


def markdown_table(report):
    """The per-task report as a Markdown table."""
    columns = [c for c in TABLE_COLUMNS if c in report.columns]
    lines = ["| task | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for task, row in report[columns].iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, (float, np.floating)):
                cells.append("" if math.isnan(value) else f"{value:.4f}")
            else:
                cells.append("" if pd.isna(value) else str(value))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _check_task_references(config, schema):
    """Loss weights and the early-stopping monitor name real tasks (for
    datasets that do not declare their tasks up front)."""
    tasks = schema.task_names
    unknown = [t for t in config.training.loss_weights if t not in tasks]
    if unknown:
        raise ValueError(f"training.loss_weights names unknown task(s) {unknown}; "
                         f"the dataset's tasks are {tasks}.")
    stopping = config.training.early_stopping
    if stopping is not None:
        monitor = stopping.monitor
        if monitor != "mean" and monitor not in tasks and not monitor.startswith("val_"):
            raise ValueError(f"training.early_stopping.monitor '{monitor}' is not "
                             f"'mean', a task ({tasks}) or a validation log key "
                             f"('val_...').")


def _dataset_arguments(config):
    """The dataset's arguments with defaults filled in (for the record)."""
    accepted = dataset_arguments(config.dataset.name)
    resolved = {name: default for name, default in accepted.items()
                if default is not inspect.Parameter.empty}
    return {**resolved, **config.dataset.args}


def _gate_heatmap(model, data, path, log):
    """Write the gate heatmap when the model has gates and
    `mtrec.evaluation.gates` exists; a summary dict, or None."""
    if path.exists():
        path.unlink()  # never leave a stale heatmap from an earlier run
    structure = getattr(model, "gate_structure", lambda: [])()
    if not structure:
        return None
    try:
        from mtrec.evaluation import gate_diagnostics as diagnostics
    except ImportError:
        return None
    if not hasattr(diagnostics, "gates"):
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = diagnostics.gates(model, data, plot_path=path)
        for warning in caught:
            log(f"warning: {warning.message}")
    except Exception as error:  # diagnostics must never lose a finished run
        log(f"warning: gate diagnostics failed ({type(error).__name__}: {error}); "
            f"no gates.png written.")
        return None
    entropy = getattr(report, "entropy", None)
    return {
        "plot": path.name if path.exists() else None,
        "num_examples": getattr(report, "num_examples", None),
        "collapsed": [list(c) for c in getattr(report, "collapsed", [])],
        "normalized_entropy": (
            {f"{level}/{gate}": value
             for (level, gate), value in entropy["normalized_entropy"].items()}
            if entropy is not None and "normalized_entropy" in entropy else None),
    }


def _report_to_dict(report):
    return {str(task): {column: _plain(value) for column, value in row.items()}
            for task, row in report.iterrows()}


def _history_records(history):
    epochs = max((len(v) for v in history.values()), default=0)
    return [{"epoch": i + 1, **{key: _plain(values[i]) for key, values in history.items()
                                if i < len(values)}}
            for i in range(epochs)]


def _plain(value):
    """JSON-friendly scalars: numpy -> Python, NaN/NA -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return _plain(value)


def _versions():
    import tensorflow as tf

    return {"mtrec": mtrec.__version__, "keras": keras.__version__,
            "tensorflow": tf.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "python": platform.python_version()}


# What a benchmark run itself rewrites: changes there do not make the code
# that produced a record differ from its commit.
_BENCHMARK_OUTPUTS = ("benchmarks/results/", "benchmarks/RESULTS.md", "benchmarks/figures/")


def _git_state():
    """Commit of the checkout mtrec is imported from; `dirty` when tracked
    files other than benchmark outputs differ from it; `changed`, the
    changed tracked paths (at most 20)."""
    root = Path(mtrec.__file__).resolve().parents[1]

    def git(*args):
        result = subprocess.run(["git", *args], cwd=root, capture_output=True,
                                text=True, timeout=10, check=False)
        return result.stdout if result.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, status = None, None
    if status is None:
        return {"commit": commit and commit.strip(), "dirty": None, "changed": None}
    changed = [line[3:].strip() for line in status.splitlines() if line.strip()]
    code = [path for path in changed if not path.startswith(_BENCHMARK_OUTPUTS)]
    return {"commit": commit.strip(), "dirty": bool(code), "changed": changed[:20]}


# --------------------------------------------------------------------------
# Batch scoring of files (`mtrec predict`)
# --------------------------------------------------------------------------
# pandas' default missing-value strings; string feature columns use only ""
# ("NA" is a real category in some data, e.g. Census' hispanic_origin).
_NA_STRINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
               "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
               "nan", "null"]
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _table_format(path, what):
    name = Path(path).name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise ValueError(f"{what} {path} is neither CSV ({', '.join(_CSV_SUFFIXES)}) nor "
                     f"Parquet ({', '.join(_PARQUET_SUFFIXES)}); name it accordingly.")


def load_scorer(path):
    """`(schema, score)` for a `.keras` file, a run folder or a SavedModel
    folder; `score(raw_features) -> {task: np.ndarray}`."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        import tensorflow as tf

        from mtrec.export.saved_model import SCHEMA_FILE, serving_input_names

        schema_file = path / "assets.extra" / SCHEMA_FILE
        if not schema_file.is_file():
            raise ValueError(
                f"SavedModel {path} has no assets.extra/{SCHEMA_FILE}, so its input "
                f"columns are unknown; export it with mtrec.export.saved_model "
                f"(or `mtrec export MODEL.keras {path}`).")
        schema = Schema.from_json(schema_file)
        loaded = tf.saved_model.load(str(path))
        if "serving_default" not in loaded.signatures:
            raise ValueError(f"SavedModel {path} has no 'serving_default' signature.")
        serve = loaded.signatures["serving_default"]
        specs = serve.structured_input_signature[1]
        served_name = serving_input_names(schema)

        def score(features):
            feed = {served_name[column]: tf.constant(
                        values, dtype=specs[served_name[column]].dtype)
                    for column, values in features.items()}
            return {task: value.numpy() for task, value in serve(**feed).items()}

        score.keep_alive = loaded  # the signature needs its object alive
        return schema, score
    if path.is_dir() and not (path / "model.keras").is_file():
        raise ValueError(f"{path} is a folder but neither a SavedModel (no "
                         f"saved_model.pb) nor a run folder (no model.keras).")
    if not path.exists():
        raise ValueError(f"Model {path} does not exist; pass a .keras file, a run "
                         f"folder or a SavedModel folder.")
    model = load_model(path)

    def score(features):
        return {task: np.asarray(value)
                for task, value in model.predict_on_batch(features).items()}

    return model.schema, score


def iter_table(path, schema, chunk_rows):
    """A CSV or Parquet file as DataFrames of at most `chunk_rows` rows, with
    a running row index; feature columns come in the dtypes the schema
    expects. A file with a header and no rows yields one empty frame."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Input file {path} does not exist.")
    fmt = _table_format(path, "Input file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet, start = pq.ParquetFile(path), 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        if start == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
        return
    header = list(pd.read_csv(path, nrows=0).columns)
    string_columns = {s.name for s in schema.features
                      if s.kind in ("multihot", "text")
                      or (s.kind == "categorical" and s.dtype == "string")}
    options = {"keep_default_na": False,
               "dtype": {c: str for c in header if c in string_columns},
               "na_values": {c: ([""] if c in string_columns else _NA_STRINGS)
                             for c in header}}
    empty = True
    for frame in pd.read_csv(path, chunksize=chunk_rows, **options):
        empty = False
        yield _schema_dtypes(frame, schema, string_columns)
    if empty:  # chunked reading of a header-only file yields nothing
        yield pd.read_csv(path, nrows=0, **options)


def _schema_dtypes(frame, schema, string_columns):
    for spec in schema.features:
        if spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if spec.name in string_columns:
            frame[spec.name] = column.astype(object).where(column.notna(), None)
        elif spec.kind == "categorical":  # int64 categoricals; missing kept as NA
            frame[spec.name] = pd.to_numeric(column, errors="coerce").astype("Int64")
        elif spec.kind == "vector":
            frame[spec.name] = [_parse_vector(v) for v in column]
    return frame


def _parse_vector(value):
    # "[0.1, 0.2]" (JSON) or "[0.1 0.2]" (numpy's str) -> list of float
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]").replace(",", " ").split()
    return [float(v) for v in text] if text else None


def prediction_columns(schema, predictions, existing=()):
    """`{column: np.ndarray}`: one column per task (multiclass: `task_k`
    per class); a name taken by an input column gets `_prediction`."""
    columns = {}
    for task in schema.tasks:
        values = np.asarray(predictions[task.name])
        # (rows, outputs); reshape cannot infer the width of zero rows.
        width = task.num_classes if task.kind == "multiclass" else 1
        values = values.reshape(len(values), -1 if len(values) else width)
        if task.kind == "multiclass":
            names = {f"{task.name}_{k}": values[:, k] for k in range(values.shape[1])}
        else:
            names = {task.name: values[:, 0]}
        for name, column in names.items():
            if name in existing:
                name = f"{name}_prediction"
            columns[name] = column
    return columns


def predict_file(model_path, input_path, output_path, batch_size=4096, log=print,
                 chunk_rows=262_144):
    """Score every row of a CSV/Parquet file with a saved model.

    Writes the input columns plus one prediction column per task
    (multiclass: one per class, `task_k`), as CSV or Parquet by the output
    file's extension. The input is read and written `chunk_rows` rows at a
    time, so a file larger than memory can be scored; the output appears
    only when every row is scored (a bad row anywhere leaves no partial
    file).

    Args:
        model_path: `.keras` file, run folder or SavedModel folder.
        input_path: `.csv` / `.parquet` file with every feature column of the
            model's schema (other columns are passed through).
        output_path: `.csv` / `.parquet` file to write.
        batch_size: int. Rows scored per call.
        chunk_rows: int. Rows read (and validated) at a time.

    Returns:
        pathlib.Path of the output.
    """
    log = log or (lambda *args, **kwargs: None)
    for name, value in (("batch_size", batch_size), ("chunk_rows", chunk_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    output_format = _table_format(output_path, "Output file")
    schema, score = load_scorer(model_path)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    rows, added, parquet_writer = 0, [], None
    try:
        for i, frame in enumerate(iter_table(input_path, schema, chunk_rows)):
            if i == 0:
                _check_columns(schema, frame, input_path)
            schema.validate(frame)  # dtypes, naming the column at fault
            columns = prediction_columns(schema, _score_frame(schema, score, frame,
                                                              batch_size), frame.columns)
            out = frame.assign(**columns)
            added = list(columns)
            if output_format == "csv":
                out.to_csv(partial, index=False, header=i == 0, mode="w" if i == 0 else "a")
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                # Later chunks are cast to the first chunk's column types.
                table = pa.Table.from_pandas(
                    out, preserve_index=False,
                    schema=parquet_writer.schema if parquet_writer else None)
                if parquet_writer is None:
                    parquet_writer = pq.ParquetWriter(partial, table.schema)
                parquet_writer.write_table(table)
            rows += len(frame)
        if parquet_writer is not None:
            parquet_writer.close()
            parquet_writer = None
        partial.replace(output_path)
    finally:
        if parquet_writer is not None:
            parquet_writer.close()
        partial.unlink(missing_ok=True)
    log(f"Scored {rows} rows of {input_path} -> {output_path} ({', '.join(added)})")
    return output_path


def _check_columns(schema, frame, input_path):
    missing = [c for c in schema.feature_names if c not in frame.columns]
    if not missing:
        return
    hints = []
    for column in missing:
        close = _closest_column(column, frame.columns)
        if close:
            hints.append(f"'{column}' -> did you mean '{close}'?")
    more = "..." if len(frame.columns) > 20 else ""
    raise ValueError(
        f"{input_path} is missing column(s) {missing} that the model needs "
        f"(it has {list(frame.columns)[:20]}{more})."
        f"{' ' + ' '.join(hints) if hints else ''}")


def _score_frame(schema, score, frame, batch_size):
    """`{task: np.ndarray}` for the rows of `frame`, `batch_size` at a time."""
    parts = [score(schema.raw_features(frame.iloc[start:start + batch_size]))
             for start in range(0, len(frame), batch_size)]
    if not parts:
        return {t: np.zeros((0,), "float32") for t in schema.task_names}
    return {t: np.concatenate([np.asarray(p[t]) for p in parts]) for t in schema.task_names}


def _closest_column(name, columns):
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in columns], n=1)
    return close[0] if close else None
