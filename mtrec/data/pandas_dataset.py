"""pandas DataFrame -> tf.data.Dataset of (encoded features, labels)."""

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.layers.feature_preprocessing import FeaturePreprocessing
from mtrec.schema.validation import check_tasks_labelled

# Rows encoded per eager call. Each call of the layer has a fixed cost
# (16,384-row chunks made a 50,000-row chunk's encoding 1.9x slower than
# 65,536), while a chunk's transient raw arrays and TF string tensor stay
# small next to the frame (~70 MB on Census).
_ENCODE_CHUNK = 65536
# Batch size of the datasets the library builds itself from a DataFrame
# (mtrec.evaluate, gate diagnostics, `model.predict(df)`,
# `model.evaluate(df)`): large, since nothing trains on them.
DATAFRAME_BATCH_SIZE = 4096
# Batch size of `model.fit(df)` when the caller gives none: Keras' own
# default of 32 makes an epoch of Census ~30x slower than 1024.
FIT_BATCH_SIZE = 1024


def encode_features(schema, raw, preprocessing=None):
    """Run the schema's in-graph preprocessing once over raw arrays.

    Args:
        schema: adapted Schema.
        raw: dict `{feature: np.ndarray}` from `schema.raw_features(df)`.
        preprocessing: optional `FeaturePreprocessing` to reuse.

    Returns:
        dict of numpy arrays keyed like `FeaturePreprocessing`'s output,
        `(rows, ...)` each.
    """
    if not raw:
        raise ValueError("No raw features to encode: the schema has no features.")
    rows = len(next(iter(raw.values())))
    return _encode_chunks(schema, rows, lambda start, stop: {
        name: values[start:stop] for name, values in raw.items()}, preprocessing)


def encode_frame(schema, df, preprocessing=None, checked=False):
    """`encode_features(schema, schema.raw_features(df))` without the raw copy.

    The DataFrame is checked once (`schema.validate`), then each chunk of
    rows is turned into raw arrays, encoded and written into the output, so
    only one chunk's raw arrays exist at a time (the whole table's raw
    string arrays took more memory than the frame itself on Census).

    Args:
        schema: adapted Schema.
        df: pandas DataFrame with every schema feature.
        preprocessing: optional `FeaturePreprocessing` to reuse.
        checked: bool. The caller has run `schema.validate(df)` already
            (the check costs about as much as a chunk's encoding).

    Returns:
        dict of numpy arrays `(rows, ...)`, equal to `encode_features`'s.
    """
    if not checked:
        schema.validate(df)
    if not schema.features:
        raise ValueError("No raw features to encode: the schema has no features.")

    def raw_chunk(start, stop):
        part = df.iloc[start:stop]
        return {spec.name: spec.to_array(part[spec.name], schema.stats.get(spec.name))
                for spec in schema.features}

    return _encode_chunks(schema, len(df), raw_chunk, preprocessing)


def _encode_chunks(schema, rows, raw_chunk, preprocessing):
    """Encode `raw_chunk(start, stop)` for every chunk of `rows` rows into
    arrays allocated once (no list of chunks, no concatenation)."""
    if rows == 0:
        raise ValueError("The raw features have no rows; there is nothing to encode.")
    layer = preprocessing or FeaturePreprocessing(schema)
    out = None
    for start in range(0, rows, _ENCODE_CHUNK):
        stop = min(start + _ENCODE_CHUNK, rows)
        encoded = layer(raw_chunk(start, stop))
        if out is None:
            # (rows, ...) per key, in the dtype the layer returns
            out = {key: np.empty((rows, *value.shape[1:]), value.dtype.as_numpy_dtype)
                   for key, value in encoded.items()}
        for key, value in encoded.items():
            out[key][start:stop] = value.numpy()
        del encoded
    return out


def from_pandas(df, schema, batch_size=1024, shuffle=False, seed=None,
                labels=True, drop_remainder=False):
    """A batched dataset of `(features, labels)` from a DataFrame.

    Features are preprocessed once here with the same
    `FeaturePreprocessing` layer the model (and its export) uses, so each
    training step only gathers ids and floats; models accept these encoded
    batches as well as raw features.

    Args:
        df: pandas DataFrame with every schema feature (and, when
            `labels`, every task's label column; NaN marks a missing label).
        schema: adapted `mtrec.Schema`.
        batch_size: int. Defaults to `1024`.
        shuffle: bool. Reshuffle every epoch. Defaults to `False`.
        seed: int. Shuffle seed, for repeatable runs.
        labels: bool. Yield `(features, labels)`; with `False`, features only.
        drop_remainder: bool. Drop the last partial batch.

    Returns:
        `tf.data.Dataset` of `(features, {task: (batch,) float32})`.
    """
    if not schema.features:
        raise ValueError(
            f"The schema has no features (tasks {schema.task_names}); a model "
            f"needs at least one input column.")
    if not schema.adapted:
        raise ValueError("The schema is not adapted; call schema.adapt(train_df) first.")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    schema.validate(df, labels=labels)
    if len(df) == 0:
        raise ValueError("The DataFrame has no rows; there is nothing to batch.")
    features = encode_frame(schema, df, checked=True)
    columns = (features, schema.raw_labels(df)) if labels else features
    del features    # the dataset holds the only reference from here on
    return gathered_batches(columns, len(df), batch_size, shuffle=shuffle, seed=seed,
                            drop_remainder=drop_remainder)


def gathered_batches(columns, rows, batch_size, shuffle=False, seed=None,
                     drop_remainder=False):
    """Batches gathered by row index from whole column arrays.

    Each batch takes its rows from every column with one gather, by a
    slice of the row indices (a permutation drawn anew each epoch when
    `shuffle`, see `_shuffled_batch_indices`). Slicing every column into rows,
    shuffling the rows and stacking them again (`from_tensor_slices` ->
    `shuffle` -> `batch`) costs about three times as much per epoch on
    Census and competes with the training step for the same cores
    (`benchmarks/input_pipeline.py` measures both).

    Args:
        columns: nested structure (dicts/tuples) of arrays with `rows`
            rows each.
        rows: int. Number of rows.
        batch_size: int.
        shuffle: bool. Reshuffle the rows every epoch.
        seed: int. Shuffle seed, for repeatable runs.
        drop_remainder: bool. Drop the last partial batch.

    Returns:
        `tf.data.Dataset` of the same structure, batches `(batch, ...)`.
    """
    tensors = tf.nest.map_structure(tf.convert_to_tensor, columns)
    indices = _batch_indices(rows, batch_size, shuffle, seed, drop_remainder)

    def gather(batch_indices):
        # (batch,) row ids -> every column's (batch, ...) rows
        return tf.nest.map_structure(lambda t: tf.gather(t, batch_indices), tensors)

    return indices.map(gather).prefetch(PREFETCH_BATCHES).with_options(_without_autotune())


#: Batches `gathered_batches` prepares ahead of the step. Each is one gather
#: per column (well under a millisecond at batch 1024 on Census), so a small
#: fixed buffer keeps the step fed; there is nothing for tf.data's autotuner
#: to tune.
PREFETCH_BATCHES = 2


def _without_autotune():
    # tf.data's autotuner runs a thread per iterator, and the iterator's
    # destructor waits for it: when fit drops an epoch's iterator at the start
    # of the next epoch, that wait took 1-4 s of the second epoch (of a 1.2 s
    # epoch; MMoE on Census, 2 cores, py-spy: RootDataset::Iterator::~Iterator
    # in UnboundedThreadPool::LogicalThreadWrapper), and sometimes of later
    # ones. Without the autotuner the pipeline is the same and the wait is gone.
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _batch_indices(rows, batch_size, shuffle, seed, drop_remainder):
    """Dataset of `(batch,)` int64 row-index batches: consecutive slices of
    `range(rows)`, or with `shuffle` of one permutation of it per pass.

    The permutation is one op per epoch; `Dataset.range(rows).shuffle(rows)`
    moved every index through a 200k-element buffer one at a time, 0.63 s
    of an epoch of Census against 0.15 s here (measured side by side on a
    loaded 2-core machine, iteration alone). Its seed comes from
    `Dataset.random(seed, rerandomize_each_iteration=True)`, so, like a
    reshuffling `shuffle`, each new iterator (each pass of `repeat()`)
    takes the next permutation, and a dataset rebuilt with the same seed
    replays the same sequence of permutations (what
    `mtrec.training.checkpoints.EpochStream` relies on to resume)."""
    steps = rows // batch_size if drop_remainder else -(-rows // batch_size)

    def batches(order):
        def cut(i):
            part = order[i * batch_size:tf.minimum((i + 1) * batch_size, rows)]
            # full batches keep a static size (XLA, distribution strategies)
            return tf.reshape(part, [batch_size]) if drop_remainder else part
        return tf.data.Dataset.range(steps).map(cut)

    if not shuffle:
        return batches(tf.range(rows, dtype=tf.int64))

    def one_epoch(draw):
        # (rows,) a permutation, seeded by this pass's draw
        return batches(tf.random.experimental.stateless_shuffle(
            tf.range(rows, dtype=tf.int64), seed=tf.stack([draw, tf.constant(0, tf.int64)])))

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    # flat_map hides the length; it is `steps` by construction
    return draws.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(steps))

def sliced_batches(block, batch_size, drop_remainder=False):
    """The consecutive batches of one block of rows, as a tf.data function.

    For `Dataset.flat_map` over a dataset whose elements are blocks
    (chunks of a file, already in the order to train on): each batch is
    one slice of every column, so no row passes through tf.data alone.

    Args:
        block: nested structure of tensors with the same number of rows.
        batch_size: int.
        drop_remainder: bool. Drop the block's last partial batch (and give
            the batches a static batch dimension).

    Returns:
        `tf.data.Dataset` of the block's batches `(batch, ...)`.
    """
    rows = tf.shape(tf.nest.flatten(block)[0], out_type=tf.int64)[0]
    if drop_remainder:
        rows = rows // batch_size * batch_size
    starts = tf.data.Dataset.range(0, rows, batch_size)

    def take(start):
        # rows [start, start + batch_size) of every column
        def cut(t):
            part = t[start:start + batch_size]
            if drop_remainder:
                part = tf.ensure_shape(part, (batch_size, *t.shape[1:]))
            return part
        return tf.nest.map_structure(cut, block)

    return starts.map(take)


def dataframe_arguments(schema, x, y, kwargs, purpose):
    """Keras `fit` / `evaluate` / `predict` arguments with DataFrames made datasets.

    A DataFrame `x` (its labels are the tasks' columns, so `y` must be
    None) becomes `from_pandas(x, schema, ...)`: for `"fit"`, batches of
    the caller's `batch_size` (else `FIT_BATCH_SIZE`), shuffled every epoch
    unless `shuffle=False`, with a seed drawn from NumPy's global generator
    (which `keras.utils.set_random_seed` seeds, so seeded runs repeat); for
    `"evaluate"` / `"predict"`, `DATAFRAME_BATCH_SIZE` unless given, in
    order (`predict` reads features only). A DataFrame `validation_data`
    becomes the evaluation dataset of the same frame (batch size
    `validation_batch_size`, else `DATAFRAME_BATCH_SIZE`). Anything else
    passes through untouched. A training DataFrame in which some task has
    no label at all (all NaN or masked) is refused, naming the task; a
    validation frame may lack a task's labels.

    Args:
        schema: the model's adapted Schema.
        x, y: Keras' `x` and `y`.
        kwargs: the other keyword arguments Keras was given (not changed).
        purpose: `"fit"`, `"evaluate"` or `"predict"`.

    Returns:
        `(x, y, kwargs)` for Keras.
    """
    if purpose not in ("fit", "evaluate", "predict"):
        raise ValueError(f"purpose must be 'fit', 'evaluate' or 'predict', got {purpose!r}.")
    kwargs = dict(kwargs)
    if purpose == "fit":
        validation = kwargs.get("validation_data")
        if isinstance(validation, pd.DataFrame):
            kwargs["validation_data"] = from_pandas(
                validation, schema,
                batch_size=kwargs.pop("validation_batch_size", None) or DATAFRAME_BATCH_SIZE)
    if not isinstance(x, pd.DataFrame):
        return x, y, kwargs
    if y is not None:
        raise ValueError(
            f"{purpose}(df, y) got both a DataFrame and y ({type(y).__name__}); the "
            f"labels of a DataFrame are its task columns "
            f"{[task.label for task in schema.tasks]}: "
            f"call {purpose}(df) without y.")
    batch_size = kwargs.pop("batch_size", None)
    if purpose == "fit":
        if kwargs.get("validation_split"):
            raise ValueError(
                f"validation_split={kwargs['validation_split']!r} does not apply to a "
                f"DataFrame; split it yourself and pass validation_data=valid_df.")
        shuffle = kwargs.pop("shuffle", True)
        seed = int(np.random.randint(0, 2**31 - 1)) if shuffle else None
        dataset = from_pandas(x, schema, batch_size=batch_size or FIT_BATCH_SIZE,
                              shuffle=bool(shuffle), seed=seed)
        check_tasks_labelled(schema, x, "model.fit(df)")
        kwargs["shuffle"] = False     # the dataset shuffles itself
    else:
        dataset = from_pandas(x, schema, batch_size=batch_size or DATAFRAME_BATCH_SIZE,
                              labels=purpose == "evaluate")
    return dataset, None, kwargs
