"""Export to a TensorFlow SavedModel that takes raw features.

An export is written whole: into `OUT.partial-<pid>/`, then renamed to
`OUT` (`mtrec.utils.atomic`), so a kill at any moment leaves the previous
export or the new one, loadable, and never the old `saved_model.pb` beside
new variables. An existing export is replaced only when asked.

Every feature has one serving name (`serving_input_names`), used alike by
the `serving_default` signature (inputs and keyword arguments), the
`tf.Example` keys, the warm-up requests, `assets.extra/mtrec_schema.json`
(its `serving_names`) and `mtrec predict`.
"""

import json
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtrec.export.example_parsing import parse_examples
from mtrec.export.packed_inputs import (
    PACKED_SIGNATURE, encode_packed, layout_record, packed_input_signature)
from mtrec.utils.atomic import clean_leftovers, is_taken, write_folder_whole, write_text_atomic
from mtrec.utils.names import safe_name, serving_names

SCHEMA_FILE = "mtrec_schema.json"
EXAMPLE_SIGNATURE = "serving_tf_example"


def serving_input_names(schema):
    """`{feature: serving name}`, one per feature, used everywhere it is served.

    A name must be a signature input name and a Python keyword argument
    alike (`[A-Za-z][A-Za-z0-9_]*`), or TF renames the keyword argument
    and the input has two names (`mtrec.utils.names.serving_name`): every
    other ASCII character (`-`, space, `/`, ...) becomes `_`, non-ASCII
    letters lose their accents and other non-ASCII characters become their
    code point, and a name not starting with a letter gets an `f` in front.
    So column "educational-num" is served as `educational_num`, "Class
    Name" as `Class_Name`, "1st" as `f1st`, "é" as `e`, "年龄" as
    `u5e74u9f84`. Raises if two features would get the same name
    (`MultiTaskModel` checks this when it is built, before training).
    """
    return serving_names(schema.feature_names)


def raw_input_signature(schema):
    """`{feature: tf.TensorSpec}` of the raw features a served model takes.

    Strings for string categoricals, multi-hot and text; float32 for
    numerics (NaN = missing); int64 for integer categoricals (-1 =
    missing); float32 `(batch, dim)` for vectors. The batch is dynamic.
    Each spec's `name` is the feature's serving name
    (`serving_input_names`).
    """
    names = serving_input_names(schema)
    return {spec.name: spec.serving_spec(schema.stats.get(spec.name), name=names[spec.name])
            for spec in schema.features}


def example_parsing_spec(schema):
    """`tf.io.parse_example` spec `{serving name: FixedLenFeature}`: every
    feature optional, and an absent one gets the value that means "missing"
    in training (NaN for numbers and vectors, `""` for strings, -1 for
    integer ids), so a request without it is scored as if the value were
    missing.

    This spec takes one list kind per feature (numbers as `float_list`);
    the `serving_tf_example` signature also accepts `int64_list` for
    numeric features (`mtrec.export.example_parsing`).
    """
    names = serving_input_names(schema)
    return {names[spec.name]: spec.parsing_spec(schema.stats.get(spec.name))
            for spec in schema.features}


def saved_model(model, path, overwrite=False):
    """Write `model` as a SavedModel that takes raw features.

    Signatures:
    - `serving_default`: one named input per raw feature, under its
      serving name (`serving_input_names`: `educational-num` is served as
      `educational_num`; see `raw_input_signature` for the dtypes),
      outputs `{task_name: prediction}`.
    - `serving_tf_example`: input `examples`, a batch of serialised
      `tf.Example` protos keyed by serving name (any feature may be
      absent; numeric ones as `float_list` or `int64_list`), same outputs.
    - `serving_packed`: one matrix per raw dtype (`floats`, `strings`,
      `integers`; columns in the layout `assets.extra/mtrec_schema.json`
      lists as `packed_inputs`, see `mtrec.export.packed_inputs`), same
      outputs: one input to bind per dtype instead of one per feature.

    The preprocessing (vocabularies, normalisation, tokenisation) is inside,
    so served and Keras predictions agree. The schema and the serving names
    are written as `assets.extra/mtrec_schema.json`.

    The export is built in `path.partial-<pid>/` and renamed to `path` once
    complete; partial folders of killed exports are removed first.

    Args:
        model: an mtrec `MultiTaskModel`.
        path: output folder.
        overwrite: bool. Replace an existing export (or other files) at
            `path`, by the final rename only. Defaults to `False`.

    Returns:
        pathlib.Path of the export.

    Raises:
        ValueError: `path` holds files and `overwrite` is False; `path` is
            a TF Serving base folder (use `export_for_serving`), or one of
            its versions and `overwrite` is True; another live process is
            exporting to `path`.
    """
    path = Path(path)
    check_export_target(path, overwrite)
    return write_folder_whole(path, lambda folder: write_saved_model(model, folder),
                              replace=overwrite)


def check_export_target(path, overwrite=False):
    """Refuse a target `saved_model` would not write (see there); remove the
    partial folders of killed exports to it. Cheap: call it before loading
    or training anything."""
    path = Path(path)
    if is_serving_base(path):
        raise ValueError(
            f"{path} is a TF Serving base folder (it holds version folders "
            f"{_version_folders(path)[:5]}); export into it with "
            f"export_for_serving(model, {str(path)!r}) (`mtrec export` does), which "
            f"writes the next version, instead of replacing the folder.")
    if overwrite and re.fullmatch(r"\d+", path.name) and is_serving_base(path.parent):
        raise ValueError(
            f"{path} is a version of the TF Serving base {path.parent}, and TF Serving "
            f"does not reload a version it has loaded; write the next version instead "
            f"(`mtrec export MODEL {path.parent}`, export_for_serving).")
    clean_leftovers(path)
    if is_taken(path) and not overwrite:
        what = ("a SavedModel" if (path / "saved_model.pb").is_file()
                else "files that are not a SavedModel")
        raise ValueError(
            f"{path} already holds {what}; refusing to overwrite it. Pass "
            f"overwrite=True (`mtrec export --overwrite`) to replace it once the new "
            f"export is complete, or choose another folder.")


def write_saved_model(model, folder):
    """Write the SavedModel of `model` into the (empty) `folder`, in place;
    `saved_model` calls it on a temporary folder."""
    folder = Path(folder)
    schema = model.schema
    names = serving_input_names(schema)
    signature = raw_input_signature(schema)
    parsing = example_parsing_spec(schema)

    archive = keras.export.ExportArchive()
    archive.track(model)

    def predict(features):
        outputs = model(features, training=False)
        # op names are scopes (ASCII); the output keys stay the task names
        return {name: tf.identity(value, name=safe_name(name))
                for name, value in outputs.items()}

    @tf.function(input_signature=[signature])
    def serve(features):
        return predict(features)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        return predict(parse_examples(examples, schema, names, parsing))

    @tf.function(input_signature=[packed_input_signature(schema)])
    def serve_packed(packed):
        return predict(encode_packed(model.preprocessing, packed))

    archive.add_endpoint(name="serving_default", fn=serve)
    archive.add_endpoint(name=EXAMPLE_SIGNATURE, fn=serve_examples)
    archive.add_endpoint(name=PACKED_SIGNATURE, fn=serve_packed)
    archive.write_out(str(folder), verbose=False)
    extra = folder / "assets.extra"
    extra.mkdir(exist_ok=True)
    write_text_atomic(extra / SCHEMA_FILE, json.dumps(
        {**schema.to_dict(), "serving_names": names,
         "packed_inputs": layout_record(schema)}, indent=1))
    return folder


def read_export_schema(path):
    """`(schema, serving_names)` from the `assets.extra/mtrec_schema.json`
    of an mtrec SavedModel (exports that predate `serving_names` get them
    from `serving_input_names`).

    Raises:
        ValueError: the file is missing, or exists but is not valid JSON or
            not an mtrec schema (corrupt or truncated), with the reason.
    """
    from mtrec.schema import Schema

    schema_file = Path(path) / "assets.extra" / SCHEMA_FILE
    if not schema_file.is_file():
        raise ValueError(
            f"SavedModel {path} has no assets.extra/{SCHEMA_FILE}, so its input "
            f"columns are unknown; export it with mtrec.export.saved_model "
            f"(or `mtrec export MODEL.keras {path}`).")
    corrupt = (f"{schema_file} exists but is not a valid mtrec schema (corrupt or "
               f"truncated: {{}}); export the model again with `mtrec export`.")
    try:
        data = json.loads(schema_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(corrupt.format(error)) from None
    if not isinstance(data, dict) or not {"features", "tasks"} <= set(data):
        raise ValueError(corrupt.format("no 'features' and 'tasks' entries"))
    try:
        schema = Schema.from_dict(data)
    except (TypeError, KeyError, AttributeError) as error:
        raise ValueError(corrupt.format(f"{type(error).__name__}: {error}")) from None
    return schema, data.get("serving_names") or serving_input_names(schema)


def load_saved_model(path):
    """`tf.saved_model.load(path)`, with errors that say what is wrong with
    the folder: not found, no or damaged `saved_model.pb`, missing or
    damaged `variables/` (TF's own say "Cannot parse file", "Unsuccessful
    TensorSliceReader constructor" or "Read less bytes than requested").

    Raises:
        ValueError: naming the folder, the file at fault and the fix.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"SavedModel folder {path} not found (it does not exist).")
    again = "export the model again (`mtrec export`)"
    if not (path / "saved_model.pb").is_file():
        raise ValueError(f"{path} is not a SavedModel: it has no saved_model.pb; {again}.")
    index = path / "variables" / "variables.index"
    if not index.is_file():
        raise ValueError(
            f"SavedModel {path} exists but is incomplete: {index.relative_to(path)} "
            f"(the weights) is missing; {again}.")
    try:
        return tf.saved_model.load(str(path))
    except Exception as error:   # TF raises OSError, IndexError, NotFoundError, ...
        raise ValueError(
            f"SavedModel {path} exists but is not valid (corrupt or truncated: "
            f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}); "
            f"{again}.") from error


def is_serving_base(path):
    """Whether `path` is a TF Serving base folder: it holds integer-named
    version folders and is not itself a SavedModel."""
    path = Path(path)
    return bool(_version_folders(path)) and not (path / "saved_model.pb").is_file()


def _version_folders(path):
    """Integer-named subfolders of `path` (TF Serving versions), sorted."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted(int(p.name) for p in path.iterdir()
                  if p.is_dir() and re.fullmatch(r"\d+", p.name))


def to_tf_examples(schema, df):
    """Serialise DataFrame rows as `tf.Example` protos keyed by serving name
    (missing values are left out of the proto, which the example signature
    reads as missing; numbers are written as `float_list`).

    Returns:
        list of bytes.
    """
    raw = schema.raw_features(df)
    names = serving_input_names(schema)
    out = []
    for i in range(len(df)):
        feature = {}
        for spec in schema.features:
            feature_value = _example_feature(spec, raw[spec.name][i])
            if feature_value is not None:
                feature[names[spec.name]] = feature_value
        out.append(tf.train.Example(
            features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def _example_feature(spec, value):
    """One raw value as a `tf.train.Feature` of the spec's raw dtype; None
    for a float value with a NaN (left out: the parsing default is missing)."""
    if spec.raw_dtype == "float32":
        values = np.atleast_1d(value)
        if np.isnan(values).any():
            return None
        return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
    if spec.raw_dtype == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
