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
    elements = (features, schema.raw_labels(df)) if labels else features
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(df), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE)
