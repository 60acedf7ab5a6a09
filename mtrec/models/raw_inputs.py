"""Raw-column datasets encoded in the input pipeline, not in the step.

A model fed raw columns runs its string/id lookups in every training step,
on the same cores as the step's math and outside what XLA can compile
(`mtrec.training.xla`). When `fit`, `evaluate` or `predict` get a
`tf.data.Dataset` of raw feature dicts, the model's own
`FeaturePreprocessing` is mapped over it instead: tf.data runs the lookups
in parallel, a batch ahead of the step (prefetch), and the step receives
encoded batches, exactly what `mtrec.data.from_pandas` would have given.
The saved and exported model still takes raw features: this only changes
where the same preprocessing layer runs while training.
"""

import tensorflow as tf

from mtrec.layers.feature_preprocessing import is_encoded


def encoded_in_pipeline(model, x):
    """`x` with the model's preprocessing mapped over its feature dicts,
    when `x` is a `tf.data.Dataset` of raw features; otherwise `x` as given.

    Args:
        model: a `MultiTaskModel` (its `preprocessing` layer is used).
        x: what fit/evaluate/predict were given. Dataset elements may be
            `features`, `(features, labels)` or `(features, labels, weights)`.

    Returns:
        a `tf.data.Dataset` of encoded elements of the same structure, or `x`.
    """
    if not isinstance(x, tf.data.Dataset):
        return x
    spec = x.element_spec
    features = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(features, dict) or not features or is_encoded(features):
        return x
    preprocessing = model.preprocessing

    def encode(*element):
        if len(element) == 1:
            return preprocessing(element[0])
        return (preprocessing(element[0]),) + tuple(element[1:])

    return x.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
