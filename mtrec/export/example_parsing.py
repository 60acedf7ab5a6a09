"""Parsing a batch of serialised `tf.Example` protos into raw features.

`tf.io.parse_example` takes one list kind per feature and fails the whole
batch on the other ("Data types don't match"). Numeric columns are integers
in most tables (age, counts, money), so clients write them as `int64_list`
as often as `float_list`; both are accepted here. Numeric features are read
from the protos with `tf.io.decode_proto` (Example -> Features -> map
entries -> Feature -> FloatList / Int64List, all standard TF ops, so the
graph serves as is); every other feature goes through `tf.io.parse_example`
with its spec's own list kind.

A feature is looked up under its serving name (`serving_input_names`), the
same name as in the `serving_default` signature.
"""

import typing

import tensorflow as tf

__all__ = ["numeric_scalars", "parse_examples"]


def numeric_scalars(schema):
    """Names of the features that take one float per row (Numeric), the
    ones a tf.Example may send as `float_list` or `int64_list`."""
    return [spec.name for spec in schema.features
            if spec.raw_dtype == "float32" and not spec.raw_shape(schema.stats.get(spec.name))]


def parse_examples(examples, schema, serving_names, parsing_spec):
    """Raw features of a batch of serialised `tf.Example` protos.

    Args:
        examples: string tensor `(batch,)`.
        schema: the model's adapted `mtrec.Schema`.
        serving_names: `{feature: serving name}` (the tf.Example keys).
        parsing_spec: `{serving name: tf.io.FixedLenFeature}` of every
            feature (`example_parsing_spec`); the numeric ones are read
            here instead, from either list kind.

    Returns:
        `{feature: tensor (batch, *raw_shape)}`; an absent feature gets the
        value that means "missing" (NaN, `""`, -1), as does an empty list.
    """
    numbers = numeric_scalars(schema)
    feature_of = {serving_names[f]: f for f in schema.feature_names}
    typed = {key: spec for key, spec in parsing_spec.items()
             if feature_of[key] not in numbers}
    parsed = tf.io.parse_example(examples, typed) if typed else {}
    features = {feature_of[key]: value for key, value in parsed.items()}
    if numbers:
        columns = _numbers(examples, [serving_names[f] for f in numbers])
        features.update(zip(numbers, tf.unstack(columns, num=len(numbers), axis=1)))
    return {name: features[name] for name in schema.feature_names}


def _numbers(examples, keys):
    """float32 `(batch, len(keys))`: the one value of each key, read from a
    float_list or an int64_list; NaN where absent or empty."""
    batch = tf.shape(examples)[0]
    # (batch,) serialised Features; "" (no entries) for an empty Example
    features = _one(_decode(examples, "tensorflow.Example", ["features"], [tf.string]), 0, "")
    entries = _decode(features, "tensorflow.Features", ["feature"], [tf.string])
    # (entries,) map entries of the whole batch, and the row each belongs to
    entries = tf.RaggedTensor.from_tensor(entries.values[0], lengths=entries.sizes[:, 0])
    rows = entries.value_rowids()
    pairs = _decode(entries.flat_values, "tensorflow.Features.FeatureEntry",
                    ["key", "value"], [tf.string, tf.string])
    keys_seen, values = _one(pairs, 0, ""), _one(pairs, 1, "")
    # (entries, len(keys)) -> which wanted key each entry is, if any
    matches = tf.equal(keys_seen[:, None], tf.constant(keys)[None, :])
    wanted = tf.reduce_any(matches, axis=1)
    column = tf.argmax(tf.cast(tf.boolean_mask(matches, wanted), tf.int32), axis=1,
                       output_type=tf.int32)
    rows = tf.cast(tf.boolean_mask(rows, wanted), tf.int32)
    lists = _decode(tf.boolean_mask(values, wanted), "tensorflow.Feature",
                    ["float_list", "int64_list", "bytes_list"], [tf.string] * 3)
    floats = _decode(_one(lists, 0, ""), "tensorflow.FloatList", ["value"], [tf.float32])
    integers = _decode(_one(lists, 1, ""), "tensorflow.Int64List", ["value"], [tf.int64])
    counts = floats.sizes[:, 0] + integers.sizes[:, 0]
    checks = [
        tf.debugging.assert_equal(
            lists.sizes[:, 2], 0, message="A numeric feature of a tf.Example holds a "
            "bytes_list; send it as a float_list or an int64_list."),
        tf.debugging.assert_less_equal(
            counts, 1, message="A numeric feature of a tf.Example holds more than one "
            "value; send one number per example."),
    ]
    with tf.control_dependencies(checks):
        nan = tf.constant(float("nan"), tf.float32)
        value = tf.where(floats.sizes[:, 0] > 0, _one(floats, 0, 0.0),
                         tf.where(integers.sizes[:, 0] > 0,
                                  tf.cast(_one(integers, 0, 0), tf.float32), nan))
    return tf.tensor_scatter_nd_update(
        tf.fill([batch, len(keys)], nan), tf.stack([rows, column], axis=1), value)


def _decode(messages, message_type, fields, dtypes):
    """`tf.io.decode_proto` of a `(messages,)` string tensor that may be
    empty (the op refuses zero messages): one empty message is decoded in
    front and dropped."""
    decoded = tf.io.decode_proto(tf.concat([[""], messages], axis=0), message_type,
                                 fields, dtypes)
    return _Decoded(values=[v[1:] for v in decoded.values], sizes=decoded.sizes[1:])


class _Decoded(typing.NamedTuple):
    values: list
    sizes: tf.Tensor


def _one(decoded, field, default):
    """The first value of `field` per message of a `decode_proto` result,
    `default` where the message has none: `(messages,)`."""
    values = decoded.values[field]
    padding = tf.fill([tf.shape(values)[0], 1], tf.constant(default, values.dtype))
    return tf.concat([values, padding], axis=1)[:, 0]
