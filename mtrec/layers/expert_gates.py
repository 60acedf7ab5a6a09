"""Softmax gates that mix a bank of experts, one mixture per gate."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.experts import shared_input_matmul


def task_expert_mask(num_tasks, num_specific_experts, num_shared_experts,
                     output_shared=False):
    """The CGC/PLE gate mask `(num_tasks [+ 1], num_experts)` of 0/1.

    Experts are ordered task 0's `num_specific_experts`, task 1's, ...,
    then the `num_shared_experts` shared ones; task t's gate sees its own
    and the shared experts, the optional shared gate (`output_shared`,
    last row) sees every expert.
    """
    t, s = int(num_tasks), int(num_specific_experts)
    mask = np.zeros((t + int(output_shared), t * s + int(num_shared_experts)), dtype="int32")
    for task in range(t):
        mask[task, task * s:(task + 1) * s] = 1
        mask[task, t * s:] = 1
    if output_shared:
        mask[t, :] = 1
    return mask


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ExpertGates(keras.layers.Layer):
    """`num_gates` linear-softmax gates over `num_experts` expert outputs.

    Gate g scores the experts from its own input, normalises with a
    softmax restricted to the experts listed in `expert_mask[g]`, and
    returns the weighted sum of those experts' outputs. MoE uses one mask
    row of all ones per gate; CGC/PLE restrict each task gate to the
    task's own experts plus the shared ones.

    Args:
        num_gates: int. Number of gates (mixtures returned).
        num_experts: int. Number of experts to mix.
        expert_mask: optional nested list `(num_gates, num_experts)` of 0/1;
            `None` lets every gate see every expert.

    Call arguments:
        gate_inputs: tensor `(batch, input_dim)` shared by all gates, or
            `(batch, num_gates, input_dim)`: one input per gate.
        expert_outputs: tensor `(batch, num_experts, units)`.

    Returns:
        `(mixtures, weights)`: `(batch, num_gates, units)` and the gate
        weights `(batch, num_gates, num_experts)` (rows sum to 1).
    """

    def __init__(self, num_gates, num_experts, expert_mask=None, **kwargs):
        super().__init__(**kwargs)
        self.num_gates = int(num_gates)
        self.num_experts = int(num_experts)
        if expert_mask is None:
            expert_mask = np.ones((self.num_gates, self.num_experts), "int32")
        mask = np.asarray(expert_mask, dtype="int32")
        if mask.shape != (self.num_gates, self.num_experts) or not mask.any(axis=1).all():
            raise ValueError(
                f"expert_mask must have shape ({self.num_gates}, "
                f"{self.num_experts}) with at least one expert per gate, "
                f"got shape {mask.shape}.")
        self.expert_mask = mask.tolist()
        # Masked-out experts get a large negative logit -> weight 0.
        self._logit_offset = (1.0 - mask.astype("float32")) * -1e9

    def build(self, gate_inputs_shape, expert_outputs_shape=None):
        input_dim = int(gate_inputs_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(self.num_gates, input_dim, self.num_experts),
            initializer="glorot_uniform")
        self.bias = self.add_weight(
            name="bias", shape=(self.num_gates, self.num_experts),
            initializer="zeros")
        self.built = True

    def call(self, gate_inputs, expert_outputs):
        if len(gate_inputs.shape) == 2:
            # (batch, in) x (gates, in, experts) -> (batch, gates, experts)
            logits = shared_input_matmul(gate_inputs, self.kernel)
        else:
            logits = ops.einsum("bgi,gie->bge", gate_inputs, self.kernel)
        logits = logits + self.bias
        if self._logit_offset.any():  # no op when every gate sees every expert
            logits = logits + ops.cast(self._logit_offset, logits.dtype)
        weights = ops.softmax(logits, axis=-1)
        # (batch, gates, experts) x (batch, experts, units) -> (batch, gates, units)
        mixtures = ops.matmul(weights, expert_outputs)
        return mixtures, weights

    def get_config(self):
        return {**super().get_config(), "num_gates": self.num_gates,
                "num_experts": self.num_experts,
                "expert_mask": self.expert_mask}
