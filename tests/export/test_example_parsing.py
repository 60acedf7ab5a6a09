"""tf.Example parsing (`mtrec.export.example_parsing`): numbers as float_list
or int64_list, in one `parse_example` call after renaming the int64 entries."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.export import example_parsing_spec, serving_input_names, to_tf_examples
from mtrec.export.example_parsing import int64_renames, parse_examples

#: Numeric names that share prefixes (x1 ... x12), suffixes, one character,
#: a 130-character name (a two-byte length in the proto) and lengths 10
#: and 92 (the newline and backslash bytes).
NUMBERS = ["x1", "x2", "x3", "x10", "x12", "age", "wage", "page", "a", "b",
           "n" * 130, "q" * 10, "z" * 92]


@pytest.fixture(scope="module")
def parser():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(size=8) for name in NUMBERS})
    frame["color"] = ["a", "b"] * 4
    frame["shop"] = pd.array([1, 2] * 4, dtype="Int64")
    frame["click"] = [0, 1] * 4
    schema = mtrec.Schema.infer(frame, tasks={"click": "binary"}, verbose=False,
                                shop=mtrec.Categorical("shop", dtype="int64")).adapt(frame)
    names, spec = serving_input_names(schema), example_parsing_spec(schema)
    parse = tf.function(lambda examples: parse_examples(examples, schema, names, spec))
    return schema, parse


def as_int64(proto, key, value):
    proto.features.feature[key].Clear()
    proto.features.feature[key].int64_list.value.append(value)


def test_aliases_keep_the_length_and_differ_from_every_key():
    calls, alias = int64_renames(NUMBERS)
    assert sorted(alias) == sorted(NUMBERS)
    assert all(len(alias[k]) == len(k) for k in NUMBERS)
    assert len(set(alias.values())) == len(NUMBERS)
    assert not set(alias.values()) & set(NUMBERS)
    assert 1 <= len(calls) <= 3
    # numbered columns (shared prefix x) drop their first character: one call
    assert len(int64_renames([f"x{i}" for i in range(1, 40)])[0]) == 1
    # descriptive names drop their last: one call for Census' seven
    census = ["age", "wage_per_hour", "capital_gains", "capital_losses",
              "dividends_from_stocks", "num_persons_worked_for_employer",
              "weeks_worked_in_year"]
    assert len(int64_renames(census)[0]) == 1
    assert int64_renames([]) == ([], {})
    with pytest.raises(ValueError, match="not a serving name"):
        int64_renames(["capital-gain"])


def test_each_number_as_float_or_int64_list_mixed_in_a_batch(parser):
    schema, parse = parser
    rows = pd.DataFrame({name: [3.0, -2.0, 7.0, 0.5] for name in NUMBERS})
    rows["color"], rows["shop"] = ["a", "b", "zz", "a"], pd.array([1, 2, 9, 1], "Int64")
    protos = [tf.train.Example.FromString(b) for b in to_tf_examples(schema, rows)]
    names = serving_input_names(schema)
    for i, name in enumerate(NUMBERS):       # row 0: every number as int64
        as_int64(protos[0], names[name], 3)
        if i % 2:                             # row 1: every other one
            as_int64(protos[1], names[name], -2)
    as_int64(protos[2], names["x1"], -(2 ** 40))   # a long varint
    protos[2].features.feature[names["age"]].int64_list.SetInParent()  # empty: missing
    del protos[3].features.feature[names["wage"]]                       # absent: missing
    out = parse(tf.constant([p.SerializeToString() for p in protos]))
    for name in NUMBERS:
        expected = [3.0, -2.0, 7.0, 0.5]
        if name == "x1":
            expected[2] = float(-(2 ** 40))
        if name == "age":
            expected[2] = np.nan
        if name == "wage":
            expected[3] = np.nan
        np.testing.assert_array_equal(out[name].numpy(), np.float32(expected), err_msg=name)
    assert out["color"].numpy().tolist() == [b"a", b"b", b"zz", b"a"]
    assert out["shop"].numpy().tolist() == [1, 2, 9, 1]


def test_a_string_that_looks_like_a_key_is_left_alone(parser):
    schema, parse = parser
    rows = pd.DataFrame({name: [1.0] for name in NUMBERS})
    rows["color"], rows["shop"] = ["\n\x03age\x12"], pd.array([1], "Int64")
    out = parse(tf.constant(to_tf_examples(schema, rows)))
    assert out["color"].numpy().tolist() == [b"\n\x03age\x12"]
    assert out["age"].numpy().tolist() == [1.0]


def test_two_values_or_text_are_refused_by_name(parser):
    schema, parse = parser
    rows = pd.DataFrame({name: [1.0] for name in NUMBERS})
    rows["color"], rows["shop"] = ["a"], pd.array([1], "Int64")
    proto = tf.train.Example.FromString(to_tf_examples(schema, rows)[0])
    proto.features.feature["x12"].int64_list.value.extend([1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"more than one value.*Features:\] \[x12\]"):
        parse(tf.constant([proto.SerializeToString()]))
    proto.features.feature["x12"].Clear()
    proto.features.feature["x12"].float_list.value.extend([1.0, 2.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[x12\]"):
        parse(tf.constant([proto.SerializeToString()]))
    proto.features.feature["x12"].Clear()
    proto.features.feature["x12"].bytes_list.value.append(b"3")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Key: x12.*Data types don't"):
        parse(tf.constant([proto.SerializeToString()]))
