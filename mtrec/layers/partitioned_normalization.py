"""Batch normalisation with scenario-specific scale, shift and statistics."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtrec.layers")
class PartitionedNormalization(keras.layers.Layer):
    """STAR's partitioned normalisation (PN): batch normalisation whose
    statistics, scale and shift depend on each example's scenario.

    For an example of scenario `p`:

        z' = (gamma * gamma_p) * (z - mean_p) / sqrt(var_p + epsilon)
             + (beta + beta_p)

    `gamma`, `beta` are shared by every scenario, `gamma_p` (init 1) and
    `beta_p` (init 0) are scenario `p`'s. In training, `mean_p` and `var_p`
    are the statistics of the batch's examples of scenario `p` (the paper
    trains on batches of one scenario; a mixed batch is partitioned by
    scenario), and each scenario present in the batch updates its own
    moving averages (its first batch sets them). In inference the moving
    averages are used.

    A scenario whose moving statistics were never updated (no training
    batch held it, e.g. the OOV id of a scenario unseen in training) is
    normalised with the moving statistics of all training examples
    together, so it still gets sensible inputs; with `gamma_p = 1` and
    `beta_p = 0` untrained, it then gets plain batch normalisation.

    Args:
        num_scenarios: int. Number of scenario ids (the scenario feature's
            cardinality, OOV buckets included).
        momentum: float. Of the moving averages. Defaults to `0.99`.
        epsilon: float. Defaults to `1e-3` (Keras' BatchNormalization).

    Call arguments:
        inputs: tensor `(batch, dim)`.
        scenario_ids: int tensor `(batch,)` in `[0, num_scenarios)`.
        training: bool. Batch statistics (and moving-average updates) only
            when True.

    Returns:
        tensor `(batch, dim)`.

    Reference: Sheng et al., CIKM 2021, "One Model to Serve All: Star
    Topology Adaptive Recommender for Multi-Domain CTR Prediction".
    """

    def __init__(self, num_scenarios, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if int(num_scenarios) < 1:
            raise ValueError(f"PartitionedNormalization needs num_scenarios >= 1, "
                             f"got {num_scenarios}.")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.num_scenarios = int(num_scenarios)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, inputs_shape, scenario_ids_shape=None):
        dim, s = int(inputs_shape[-1]), self.num_scenarios
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.scenario_gamma = self.add_weight(name="scenario_gamma", shape=(s, dim),
                                              initializer="ones")
        self.scenario_beta = self.add_weight(name="scenario_beta", shape=(s, dim),
                                             initializer="zeros")
        self.scenario_moving_mean = self.add_weight(name="scenario_moving_mean", shape=(s, dim),
                                           initializer="zeros", trainable=False)
        self.scenario_moving_variance = self.add_weight(name="scenario_moving_variance", shape=(s, dim),
                                               initializer="ones", trainable=False)
        # 1 once a training batch held the scenario, else 0.
        self.seen = self.add_weight(name="seen", shape=(s,), initializer="zeros",
                                    trainable=False)
        self.global_mean = self.add_weight(name="global_mean", shape=(dim,),
                                           initializer="zeros", trainable=False)
        self.global_variance = self.add_weight(name="global_variance", shape=(dim,),
                                               initializer="ones", trainable=False)
        self.built = True

    def call(self, inputs, scenario_ids, training=False):
        x = ops.cast(inputs, "float32")
        ids = ops.cast(ops.reshape(scenario_ids, (-1,)), "int32")
        if training:
            mean, variance = self._batch_statistics(x, ids)
        else:
            seen = ops.take(self.seen, ids)[:, None]
            # (batch, dim): the scenario's moving statistics, or the global
            # ones for a scenario never trained on
            mean = (seen * ops.take(self.scenario_moving_mean, ids, axis=0)
                    + (1.0 - seen) * self.global_mean[None])
            variance = (seen * ops.take(self.scenario_moving_variance, ids, axis=0)
                        + (1.0 - seen) * self.global_variance[None])
        gamma = self.gamma[None] * ops.take(self.scenario_gamma, ids, axis=0)
        beta = self.beta[None] + ops.take(self.scenario_beta, ids, axis=0)
        out = gamma * (x - mean) / ops.sqrt(variance + self.epsilon) + beta
        return ops.cast(out, self.compute_dtype)

    def _batch_statistics(self, x, ids):
        """Per-example mean and variance of its scenario's examples in the
        batch, `(batch, dim)` each; updates the moving averages."""
        # (batch, scenarios) one-hot; (scenarios,) examples per scenario
        onehot = ops.one_hot(ids, self.num_scenarios, dtype="float32")
        counts = ops.sum(onehot, axis=0)
        safe = ops.maximum(counts, 1.0)[:, None]
        # (scenarios, dim)
        mean_s = ops.matmul(ops.transpose(onehot), x) / safe
        centred = x - ops.matmul(onehot, mean_s)
        var_s = ops.matmul(ops.transpose(onehot), ops.square(centred)) / safe
        present = ops.cast(counts > 0, "float32")
        m = self.momentum
        # A scenario absent from the batch keeps its moving statistics; one
        # seen for the first time starts from its batch statistics (not from
        # 0 and 1, which a rare scenario would take many batches to leave).
        first = present * (1.0 - self.seen)
        step = ((1.0 - m) * present + m * first)[:, None]
        self.scenario_moving_mean.assign(
            self.scenario_moving_mean + step * (mean_s - self.scenario_moving_mean))
        self.scenario_moving_variance.assign(
            self.scenario_moving_variance + step * (var_s - self.scenario_moving_variance))
        global_step = 1.0 - m * ops.max(self.seen)
        self.global_mean.assign(
            self.global_mean + global_step * (ops.mean(x, axis=0) - self.global_mean))
        self.global_variance.assign(
            self.global_variance + global_step * (ops.var(x, axis=0) - self.global_variance))
        self.seen.assign(ops.maximum(self.seen, present))
        return ops.matmul(onehot, mean_s), ops.matmul(onehot, var_s)

    def compute_output_shape(self, inputs_shape, scenario_ids_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        return {**super().get_config(), "num_scenarios": self.num_scenarios,
                "momentum": self.momentum, "epsilon": self.epsilon}
