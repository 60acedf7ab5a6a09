"""Repeatable runs."""

import keras
import tensorflow as tf


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy, TensorFlow and Keras; with `deterministic`, also
    ask TensorFlow for deterministic kernels, so two CPU runs with the same
    seed give identical weights and metrics."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
