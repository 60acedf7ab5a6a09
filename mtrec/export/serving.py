"""TensorFlow Serving layout: integer version folders and warm-up requests.

A version folder is written whole (built in `<base>/<version>.partial-<pid>/`
with its warm-up requests, then renamed), so TF Serving, which watches the
base folder, never sees a half-written version: a temporary folder's name is
not an integer, so it is not taken for a version.
"""

import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from mtrec.export.saved_model import serving_input_names, write_saved_model
from mtrec.utils.atomic import clean_leftovers, write_folder_whole

WARMUP_FILE = "tf_serving_warmup_requests"


def next_version(base_dir):
    """1 + the largest integer folder name under `base_dir` (1 if none)."""
    base = Path(base_dir)
    versions = [int(p.name) for p in base.iterdir()
                if p.is_dir() and re.fullmatch(r"\d+", p.name)] if base.exists() else []
    return max(versions, default=0) + 1


def export_for_serving(model, base_dir, version=None, warmup_rows=None, model_name=None):
    """Export `model` to `base_dir/<version>/` as TF Serving expects.

    Args:
        model: an mtrec model.
        base_dir: the model's base path in TF Serving's config.
        version: int; default the next free integer.
        warmup_rows: optional DataFrame of a few (validation) rows; they are
            written as `assets.extra/tf_serving_warmup_requests`, the
            PredictRequests TF Serving replays at load time so the first
            real request does not pay for graph warm-up.
        model_name: name put in the warm-up requests (default: the base
            folder's name).

    Returns:
        pathlib.Path of the version folder.
    """
    base = Path(base_dir)
    if base.exists() and not base.is_dir():
        raise ValueError(f"TF Serving base {base} is a file; pass a folder.")
    if (base / "saved_model.pb").is_file():
        raise ValueError(
            f"{base} is itself a SavedModel, not a TF Serving base folder (which "
            f"holds version folders 1/, 2/, ...); pass its parent or another folder.")
    version = int(version) if version is not None else next_version(base)
    target = base / str(version)
    clean_leftovers(target)
    if target.exists():
        raise ValueError(f"{target} already exists; TF Serving versions are immutable. "
                         f"Pick another version or leave version=None for the next one.")
    model_name = model_name or base.resolve().name

    def write(folder):
        write_saved_model(model, folder)
        if warmup_rows is not None and len(warmup_rows):
            write_warmup_requests(model.schema, warmup_rows,
                                  folder / "assets.extra" / WARMUP_FILE, model_name)

    # replace=False: a version another process published meanwhile stays.
    return write_folder_whole(target, write, replace=False)


def write_warmup_requests(schema, rows, path, model_name):
    """One PredictRequest per row (serving_default inputs, under their serving
    names) as PredictionLog records in a TFRecord file."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    raw = schema.raw_features(rows)
    names = serving_input_names(schema)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(len(rows)):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name,
                                               signature_name="serving_default"))
            for name, values in raw.items():
                value = values[i:i + 1]
                if value.dtype == object:  # UTF-8 bytes, non-ASCII text included
                    value = np.array([str(v).encode("utf-8") for v in value], object)
                request.inputs[names[name]].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
