"""Parsing a batch of serialised `tf.Example` protos into raw features.

`tf.io.parse_example` takes one list kind per key and fails the whole batch
on the other ("Data types don't match"). Numeric columns are integers in
most tables (age, counts, money), so clients write them as `int64_list` as
often as `float_list`; both are accepted here, in one `parse_example` call:

1. Before parsing, every map entry of a numeric feature that holds an
   `int64_list` is renamed, in the serialised bytes, to an alias key of the
   same length (`tf.strings.regex_replace`, a few calls at most; lengths
   are unchanged, so the protos stay valid). An entry is
   `0x0a <key length> <key> 0x12 <value length> 0x1a ...` (tag of the
   key, tag of the value, tag of `Feature.int64_list`), which the pattern
   matches exactly for each numeric serving name.
2. `parse_example` then reads each numeric feature twice, as a ragged
   `float32` list under its serving name and as a ragged `int64` list
   under its alias; one value in either is the feature's value, none is
   missing (NaN), more than one is refused with the feature's name.

This costs a regex pass over the bytes (about 4 ms per 1024 Census rows on
one core, 10 ms when every number is an int64_list, beside 9 ms for the
parse itself), where reading the numbers with `tf.io.decode_proto` cost
about 90 ms. Limits, all refused rather than misread: a numeric
`int64_list` entry written with its value before its key, or holding more
than 9 values, is not renamed and fails with TF's "Data types don't
match" naming the key. A string value that itself contains the bytes of a
numeric entry (key, tags and all) would be renamed too; no text does.

A feature is looked up under its serving name (`serving_input_names`), the
same name as in the `serving_default` signature.
"""

import tensorflow as tf

__all__ = ["int64_renames", "numeric_scalars", "parse_examples"]

#: RE2 rewrites reference groups \1 to \9 only: one is the value length.
_MAX_GROUPS = 9
#: Alias markers: one per regex call, never in a serving name
#: ([A-Za-z0-9_]) and not the rewrite's escape character.
_MARKERS = [chr(c) for c in range(1, 128)
            if not (chr(c).isalnum() or chr(c) in "_\\")]


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
            from either list kind instead.

    Returns:
        `{feature: tensor (batch, *raw_shape)}`; an absent feature gets the
        value that means "missing" (NaN, `""`, -1), as does an empty
        numeric list.
    """
    numbers = numeric_scalars(schema)
    keys = [serving_names[f] for f in numbers]
    calls, alias = int64_renames(keys)
    for pattern, rewrite in calls:
        examples = tf.strings.regex_replace(examples, pattern, rewrite)
    spec = {key: value for key, value in parsing_spec.items() if key not in keys}
    for key in keys:
        spec[key] = tf.io.RaggedFeature(tf.float32, row_splits_dtype=tf.int32)
        spec[alias[key]] = tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int32)
    parsed = tf.io.parse_example(examples, spec)
    features = {f: parsed[serving_names[f]] for f in schema.feature_names if f not in numbers}
    if numbers:
        features.update(zip(numbers, _one_number_each(
            [parsed[k] for k in keys], [parsed[alias[k]] for k in keys], keys)))
    return {name: features[name] for name in schema.feature_names}


def _one_number_each(floats, integers, keys):
    """float32 `(batch,)` per key: the one value of its float list or its
    int64 list, NaN when both are empty; one assertion that no key holds
    more than one value."""
    # (batch, keys) values per row and key, float and int64 lists together
    counts = tf.stack([f.row_lengths() + i.row_lengths()
                       for f, i in zip(floats, integers)], axis=1)
    too_many = tf.reduce_any(counts > 1, axis=0)
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(too_many)),
        ["A numeric feature of a tf.Example holds more than one value; send one "
         "number (float_list or int64_list) per example. Features:",
         tf.boolean_mask(tf.constant(keys), too_many)], summarize=len(keys))
    nan = float("nan")
    with tf.control_dependencies([check]):
        return [tf.where(i.row_lengths() > 0,
                         tf.cast(i.to_tensor(0, shape=[None, 1])[:, 0], tf.float32),
                         f.to_tensor(nan, shape=[None, 1])[:, 0])
                for f, i in zip(floats, integers)]


def int64_renames(keys):
    """The `tf.strings.regex_replace` calls that rename the `int64_list`
    entries of `keys` (serving names) to aliases of the same length, and
    the aliases.

    An alias is the key with one character, its last or its first, replaced
    by a marker that no serving name holds. A regex alternative must
    rebuild the rest of the key from capture groups, and RE2 rewrites have
    nine: dropping the last character costs one group per distinct last
    character (`age`, `wage` ...), dropping the first two per (length,
    first character) (`x1` ... `x9`); whichever needs fewer calls is used.
    Within a call no two aliases agree; across calls the markers differ.

    Returns:
        `([(pattern, rewrite)], {key: alias})`; no calls for no keys.

    Raises:
        ValueError: a key outside `[A-Za-z0-9_]` (not a serving name).
    """
    for key in keys:
        if not key or not key.isascii() or not key.replace("_", "a").isalnum():
            raise ValueError(f"tf.Example key {key!r} is not a serving name "
                             f"([A-Za-z0-9_]+); name it with serving_input_names.")
    plans = [_plan(keys, drop_last) for drop_last in (True, False)]
    calls = min(plans, key=len)
    if len(calls) > len(_MARKERS):
        raise ValueError(f"{len(keys)} numeric features need {len(calls)} renaming "
                         f"passes (at most {len(_MARKERS)}); rename them so that "
                         f"fewer share their first or last character.")
    renames, alias = [], {}
    for marker, classes in zip(_MARKERS, calls):
        pieces, heads, tails = [], [], []
        for (first, char, _), members in classes.items():
            if first:    # (length, first char) class: head group, char, tail group
                heads.append(len(heads) + len(tails) + 1)
                tails.append(len(heads) + len(tails) + 1)
                pieces.append(f"({_length(members[0])}){char}("
                              + "|".join(k[1:] for k in members) + ")")
            else:        # last-char class: one group of length byte + head
                heads.append(len(heads) + len(tails) + 1)
                pieces.append("(" + "|".join(_length(k) + k[:-1] for k in members)
                              + f"){char}")
            for key in members:
                alias[key] = marker + key[1:] if first else key[:-1] + marker
        value_length = len(heads) + len(tails) + 1
        pattern = r"\x0a(?:" + "|".join(pieces) + r")\x12([\x00-\x7f])\x1a"
        rewrite = ("\n" + "".join(f"\\{g}" for g in heads) + marker
                   + "".join(f"\\{g}" for g in tails) + f"\x12\\{value_length}\x1a")
        renames.append((pattern, rewrite))
    return renames, alias


def _plan(keys, drop_last):
    """Keys grouped into regex calls: a list of `{class: [keys]}`, where a
    class is `(False, last char, None)` or `(True, first char, length)`."""
    calls, taken = [], []
    groups_per_class = 1 if drop_last else 2
    for key in keys:
        cls = (False, key[-1], None) if drop_last else (True, key[0], len(key))
        rest = key[:-1] if drop_last else key[1:]
        fits = [i for i, (classes, rests) in enumerate(zip(calls, taken))
                if rest not in rests and (
                    cls in classes or (len(classes) + 1) * groups_per_class < _MAX_GROUPS)]
        if not fits:
            calls.append({})
            taken.append(set())
        classes, rests = calls[fits[0] if fits else -1], taken[fits[0] if fits else -1]
        classes.setdefault(cls, []).append(key)
        rests.add(rest)
    return calls


def _length(key):
    """The length byte of `key` in a regex, or its two-byte varint for
    keys of 128 characters or more (`\\C`: any byte, as RE2 cannot name a
    byte over 0x7f in a UTF-8 pattern)."""
    if len(key) < 128:
        return f"\\x{len(key):02x}"
    if len(key) >= 2 ** 14:
        raise ValueError(f"Serving name of {len(key)} characters is too long.")
    return rf"\C\x{len(key) >> 7:02x}"
