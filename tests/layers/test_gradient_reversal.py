"""GradientReversal: the identity forward, the gradient negated and scaled backward."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import GradientReversal

X = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -4.0]], "float32")
# d(sum(C * y))/dy = C: the upstream gradient the layer sees
C = np.array([[2.0, 1.0, -1.0], [3.0, -2.0, 0.5]], "float32")


def test_contract(run_layer_test):
    run_layer_test(GradientReversal, dict(scale=0.5), X, (2, 3),
                   expected_num_trainable_weights=0)


def test_forward_is_the_identity():
    out = GradientReversal(scale=0.7)(X)
    np.testing.assert_array_equal(np.asarray(out), X)


@pytest.mark.parametrize("scale", [1.0, 0.25, 0.0])
def test_gradient_is_negated_and_scaled(scale):
    layer = GradientReversal(scale=scale)
    x = tf.Variable(X)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(C * layer(x))
    # without the layer the gradient would be C
    np.testing.assert_allclose(np.asarray(tape.gradient(loss, x)), -scale * C)


def test_reversal_in_a_compiled_function_and_through_a_chain():
    layer = GradientReversal(scale=0.5)
    x = tf.Variable(X)

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            # by hand: y = rev(2x), loss = sum(C * 9 y^2), dloss/dy = 18 C y
            # with y = 2x, and dy/dx reversed is -0.5 * 2 = -1
            loss = tf.reduce_sum(C * tf.square(3.0 * layer(2.0 * x)))
        return tape.gradient(loss, x)

    np.testing.assert_allclose(np.asarray(gradient()), -1.0 * 18.0 * C * (2.0 * X),
                               rtol=1e-6)


def test_negative_scale_is_refused():
    with pytest.raises(ValueError, match="scale >= 0"):
        GradientReversal(scale=-1.0)
