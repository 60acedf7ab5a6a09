"""Export to a TensorFlow SavedModel that takes raw features."""

import re
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

SCHEMA_FILE = "mtrec_schema.json"
EXAMPLE_SIGNATURE = "serving_tf_example"


def serving_input_names(schema):
    """`{feature: signature input name}`.

    Signature inputs must match `[A-Za-z0-9.][A-Za-z0-9_.-]*`, so other
    characters (spaces, `&`, ...) become `_`: the served input of column
    "Class Name" is `Class_Name`. Raises if two features would collide.
    """
    names = {}
    for spec in schema.features:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", spec.name)
        if not re.match(r"[A-Za-z0-9.]", name):
            name = "f" + name
        names[spec.name] = name
    clashes = [n for n, count in Counter(names.values()).items() if count > 1]
    if clashes:
        raise ValueError(
            f"Features {[f for f, n in names.items() if n in clashes]} all become the "
            f"signature input {clashes[0]!r}; rename one of the columns.")
    return names


def raw_input_signature(schema):
    """`{feature: tf.TensorSpec}` of the raw features a served model takes.

    Strings for string categoricals, multi-hot and text; float32 for
    numerics (NaN = missing); int64 for integer categoricals (-1 =
    missing); float32 `(batch, dim)` for vectors. The batch is dynamic.
    Each spec's `name` is the signature's input name
    (`serving_input_names`).
    """
    names = serving_input_names(schema)
    return {spec.name: spec.serving_spec(schema.stats.get(spec.name), name=names[spec.name])
            for spec in schema.features}


def example_parsing_spec(schema):
    """`tf.io.parse_example` spec: every feature optional, and an absent one
    gets the value that means "missing" in training (NaN for numbers and
    vectors, `""` for strings, -1 for integer ids), so a request without it
    is scored as if the value were missing."""
    return {spec.name: spec.parsing_spec(schema.stats.get(spec.name))
            for spec in schema.features}


def saved_model(model, path):
    """Write `model` as a SavedModel that takes raw features.

    Signatures:
    - `serving_default`: one named input per raw feature (see
      `raw_input_signature`; names outside `[A-Za-z0-9_.-]` are mapped by
      `serving_input_names`), outputs `{task_name: prediction}`.
    - `serving_tf_example`: input `examples`, a batch of serialised
      `tf.Example` protos (any feature may be absent), same outputs.

    The preprocessing (vocabularies, normalisation, tokenisation) is inside,
    so served and Keras predictions agree. The schema is written as
    `assets.extra/mtrec_schema.json`.

    Args:
        model: an mtrec `MultiTaskModel`.
        path: output folder.

    Returns:
        pathlib.Path of the export.
    """
    path = Path(path)
    signature = raw_input_signature(model.schema)
    parsing = example_parsing_spec(model.schema)

    archive = keras.export.ExportArchive()
    archive.track(model)

    def predict(features):
        outputs = model(features, training=False)
        return {name: tf.identity(value, name=name) for name, value in outputs.items()}

    @tf.function(input_signature=[signature])
    def serve(features):
        return predict(features)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, parsing))

    archive.add_endpoint(name="serving_default", fn=serve)
    archive.add_endpoint(name=EXAMPLE_SIGNATURE, fn=serve_examples)
    archive.write_out(str(path), verbose=False)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    model.schema.to_json(extra / SCHEMA_FILE, indent=1)
    return path


def to_tf_examples(schema, df):
    """Serialise DataFrame rows as `tf.Example` protos (missing values are
    left out of the proto, which the example signature reads as missing).

    Returns:
        list of bytes.
    """
    raw = schema.raw_features(df)
    out = []
    for i in range(len(df)):
        feature = {}
        for spec in schema.features:
            feature_value = _example_feature(spec, raw[spec.name][i])
            if feature_value is not None:
                feature[spec.name] = feature_value
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
