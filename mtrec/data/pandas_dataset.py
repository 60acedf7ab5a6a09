"""pandas DataFrame -> tf.data.Dataset of (encoded features, labels)."""

import numpy as np
import tensorflow as tf

from mtrec.layers.feature_preprocessing import FeaturePreprocessing

# Rows encoded per eager call; bounds the memory of the one-off encoding.
_ENCODE_CHUNK = 65536
# Batch size of the datasets the library builds itself from a DataFrame
# (mtrec.evaluate, gate diagnostics): large, since nothing trains on them.
DATAFRAME_BATCH_SIZE = 4096


def encode_features(schema, raw, preprocessing=None):
    """Run the schema's in-graph preprocessing once over raw arrays.

    Args:
        schema: adapted Schema.
        raw: dict `{feature: np.ndarray}` from `schema.raw_features(df)`.
        preprocessing: optional `FeaturePreprocessing` to reuse.

    Returns:
        dict of numpy arrays keyed like `FeaturePreprocessing`'s output.
    """
    if not raw:
        raise ValueError("No raw features to encode: the schema has no features.")
    rows = len(next(iter(raw.values())))
    if rows == 0:
        raise ValueError("The raw features have no rows; there is nothing to encode.")
    layer = preprocessing or FeaturePreprocessing(schema)
    chunks = []
    for start in range(0, rows, _ENCODE_CHUNK):
        part = {k: v[start:start + _ENCODE_CHUNK] for k, v in raw.items()}
        chunks.append({k: v.numpy() for k, v in layer(part).items()})
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


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
    features = encode_features(schema, schema.raw_features(df))
    columns = (features, schema.raw_labels(df)) if labels else features
    return gathered_batches(columns, len(df), batch_size, shuffle=shuffle, seed=seed,
                            drop_remainder=drop_remainder)


def gathered_batches(columns, rows, batch_size, shuffle=False, seed=None,
                     drop_remainder=False):
    """Batches gathered by row index from whole column arrays.

    Only the row indices pass through tf.data one at a time (shuffled
    anew each epoch when `shuffle`); each batch then takes its rows from
    every column with one gather. Slicing every column into rows,
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
    indices = tf.data.Dataset.range(rows)
    if shuffle:
        indices = indices.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    indices = indices.batch(batch_size, drop_remainder=drop_remainder)

    def gather(batch_indices):
        # (batch,) row ids -> every column's (batch, ...) rows
        return tf.nest.map_structure(lambda t: tf.gather(t, batch_indices), tensors)

    return indices.map(gather).prefetch(tf.data.AUTOTUNE)
