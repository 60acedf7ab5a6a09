"""Gradient reversal: identity forward, the gradient negated and scaled backward."""

import keras
from keras import ops


def reverse_gradient(x, scale):
    """`x` unchanged; its gradient becomes `-scale` times the incoming one.

    Args:
        x: tensor.
        scale: float. Factor of the reversed gradient (`0.0` stops it).

    Returns:
        tensor, equal to `x`.
    """
    @ops.custom_gradient
    def reverse(value):
        def grad(*args, upstream=None):
            # Keras passes the upstream gradient positionally on TensorFlow
            # and JAX, by keyword on PyTorch.
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, ops.cast(-scale, upstream.dtype))

        return value, grad

    return reverse(x)


@keras.saving.register_keras_serializable(package="mtrec.layers")
class GradientReversal(keras.layers.Layer):
    """The identity in the forward pass; in the backward pass the gradient
    is multiplied by `-scale`.

    Put between a feature extractor and an adversary (a discriminator
    trained to minimise its loss): the adversary still minimises it, while
    the extractor below receives the negated gradient, so it maximises the
    same loss (the min-max game of adversarial training in one backward
    pass).

    Args:
        scale: float >= 0. The reversed gradient's factor (lambda):
            `0.0` blocks the gradient, `1.0` negates it. Defaults to `1.0`.

    Call arguments:
        inputs: tensor of any shape.

    Returns:
        the same tensor (same shape and values).

    Reference: Ganin and Lempitsky, ICML 2015, "Unsupervised Domain
    Adaptation by Backpropagation".
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        if self.scale < 0:
            raise ValueError(f"GradientReversal needs scale >= 0 (the factor of the "
                             f"negated gradient), got {scale}; 0 blocks the gradient.")

    def call(self, inputs):
        return reverse_gradient(inputs, self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
