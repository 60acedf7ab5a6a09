"""The packed serving signature: a few matrices instead of one input per feature.

`serving_default` takes one named tensor per feature (38 on Census). A
caller pays for each: TF's Python signature call binds, checks and
converts every named input (about 0.6 ms of a 0.85 ms batch-1 request on
Census, one core), and TF Serving decodes one `TensorProto` per input.
`serving_packed` takes one matrix per raw dtype instead:

- `floats`: float32 `(batch, n_floats)`: each Numeric feature (one column,
  NaN = missing), in schema order, then each Vector feature (`dim`
  columns; a row with a NaN is missing), in schema order;
- `strings`: string `(batch, n_strings)`: each string Categorical, MultiHot
  (the delimited string) and Text feature, in schema order (`""` =
  missing);
- `integers`: int64 `(batch, n_integers)`: each integer Categorical, in
  schema order (-1 = missing).

An input exists only when the schema has a feature of its dtype. The
layout (`packed_layout`) is written into `assets.extra/mtrec_schema.json`
as `packed_inputs`: per input, its width and each feature's first column
and width. `pack_features` builds the matrices from a DataFrame or from
`Schema.raw_features`' arrays. Outputs and predictions are those of
`serving_default` on the same values.

A matrix of another width is refused in the graph, with an error naming
the input, the width found and the one expected (so clients that do not
go through TF's Python signature binding, as TF Serving's C++ does not,
get it too).
"""

import numpy as np
import pandas as pd
import tensorflow as tf

__all__ = ["PACKED_INPUTS", "PACKED_SIGNATURE", "encode_packed", "pack_features",
           "packed_input_signature", "packed_layout"]

PACKED_SIGNATURE = "serving_packed"
#: The packed input of each raw dtype, in signature order.
PACKED_INPUTS = {"float32": "floats", "string": "strings", "int64": "integers"}
_NUMPY_DTYPES = {"floats": np.float32, "strings": object, "integers": np.int64}


def packed_layout(schema):
    """Which columns of which packed input hold each feature.

    Returns:
        dict `{input: [(feature, start, width)]}`, inputs in
        `PACKED_INPUTS` order (only those the schema uses), features in
        the order of the module docstring (in `floats`, the Numeric
        features first).
    """
    groups = {name: [] for name in PACKED_INPUTS.values()}
    vectors = []
    for spec in schema.features:
        shape = spec.raw_shape(schema.stats.get(spec.name))
        entry = (spec.name, int(shape[0]) if shape else 1)
        if spec.raw_dtype == "float32" and shape:
            vectors.append(entry)
        else:
            groups[PACKED_INPUTS[spec.raw_dtype]].append(entry)
    groups["floats"] += vectors
    layout = {}
    for name, entries in groups.items():
        if entries:
            starts = np.cumsum([0] + [width for _, width in entries[:-1]])
            layout[name] = [(feature, int(start), width)
                            for (feature, width), start in zip(entries, starts)]
    return layout


def layout_record(schema):
    """`packed_layout` as written into `mtrec_schema.json`: `{input:
    {"width": int, "columns": [{"feature", "start", "width"}]}}`, plus the
    signature's name under `"signature"`."""
    record = {"signature": PACKED_SIGNATURE}
    for name, entries in packed_layout(schema).items():
        record[name] = {"width": _width(entries), "columns": [
            {"feature": feature, "start": start, "width": width}
            for feature, start, width in entries]}
    return record


def packed_input_signature(schema):
    """`{input: tf.TensorSpec (None, None)}` of `serving_packed`: the width
    is checked in the graph (`encode_packed`), where the error can name
    it; the batch is dynamic."""
    layout = packed_layout(schema)
    return {name: tf.TensorSpec([None, None], tf.as_dtype(dtype), name=name)
            for dtype, name in PACKED_INPUTS.items() if name in layout}


def pack_features(schema, data):
    """The packed inputs of rows of raw features.

    Args:
        schema: the model's adapted `Schema`.
        data: a DataFrame (converted by `schema.raw_features`) or a dict
            `{feature: array (rows, *raw_shape)}` as it returns.

    Returns:
        dict `{input: np.ndarray (rows, width)}`: float32, object (str) and
        int64.

    Raises:
        ValueError: a feature is missing from `data`.
    """
    raw = schema.raw_features(data) if isinstance(data, pd.DataFrame) else data
    absent = [name for name in schema.feature_names if name not in raw]
    if absent:
        raise ValueError(f"pack_features: no values for feature(s) {absent}; pass every "
                         f"schema feature ({schema.feature_names}), missing values as '' "
                         f"(strings), NaN (numbers) or -1 (integer ids).")
    rows = len(next(iter(raw.values())))
    out = {}
    for name, entries in packed_layout(schema).items():
        matrix = np.empty((rows, _width(entries)), _NUMPY_DTYPES[name])
        for feature, start, width in entries:
            values = np.asarray(raw[feature])
            matrix[:, start:start + width] = values.reshape(rows, width)
        out[name] = matrix
    return out


def encode_packed(preprocessing, packed):
    """The encoded dict of packed inputs (in the graph of `serving_packed`).

    The fused categoricals' strings are fingerprinted straight from the
    `strings` matrix (a gather of its columns only when other string
    features sit between them) and the Numeric features read as one slice
    of `floats`: no per-feature column is split off and stacked again.

    Args:
        preprocessing: the model's `FeaturePreprocessing`.
        packed: dict `{input: tensor (batch, width)}` of
            `packed_input_signature`.

    Returns:
        the dict `FeaturePreprocessing` returns.

    Raises:
        tf.errors.InvalidArgumentError (at run time): an input's width is
            not the layout's, naming both.
    """
    schema = preprocessing.schema
    layout = packed_layout(schema)
    packed = {name: _checked_width(name, packed[name], entries)
              for name, entries in layout.items()}
    where = {feature: (name, start, width)
             for name, entries in layout.items() for feature, start, width in entries}
    vector_names = {spec.name for spec in schema.features_of("vector")}

    def column(feature):
        name, start, width = where[feature]
        matrix = packed[name]
        # (batch, dim) for a vector, else (batch,)
        return matrix[:, start:start + width] if feature in vector_names else matrix[:, start]

    fused = numeric = None
    if preprocessing.fused_feature_names:
        starts = [where[f][1] for f in preprocessing.fused_feature_names]
        strings = packed["strings"]
        fused = (strings if starts == list(range(_width(layout["strings"])))
                 else tf.gather(strings, starts, axis=1))
    numbers = [spec.name for spec in schema.features_of("numeric")]
    if numbers:
        floats = packed["floats"]
        # the Numeric features are the first columns of `floats`
        numeric = floats if len(numbers) == _width(layout["floats"]) else \
            floats[:, :len(numbers)]
    return preprocessing.encode_columns(column, fused, numeric)


def _checked_width(name, matrix, entries):
    """`matrix` `(batch, width)` with its static width set, after a run-time
    check that names the input and the expected width."""
    width = _width(entries)
    features = ", ".join(feature if size == 1 else f"{feature} ({size} columns)"
                         for feature, _, size in entries[:8])
    more = f", ... ({len(entries)} features)" if len(entries) > 8 else ""
    # TF quotes the message with \' escapes: no quotes in it. Four ops per
    # input (shape, slice, equal, assert), beside a graph of about 80.
    found = tf.shape(matrix, out_type=tf.int32)[1]
    check = tf.debugging.Assert(tf.equal(found, width), [
        f"{PACKED_SIGNATURE} input {name} must have {width} columns: {features}{more} "
        f"(the layout is packed_inputs in assets.extra/mtrec_schema.json; "
        f"mtrec.export.pack_features builds the matrices). Columns found:", found])
    with tf.control_dependencies([check]):
        return tf.ensure_shape(matrix, [None, width])


def _width(entries):
    return sum(width for _, _, width in entries)
