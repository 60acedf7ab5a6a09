"""DSelect-k gates: each gate selects at most k of n experts, differentiably."""

import math

import numpy as np
import keras
from keras import ops

# Inside the log of the entropy, so that log(0) stays finite.
_EPSILON = 1e-6


def smooth_step(z, gamma=1.0):
    """The smooth-step function of Hazimeh et al. (2020), elementwise:

        0                                   if z <= -gamma / 2
        -2 z^3 / gamma^3 + 3 z / (2 gamma) + 1/2   if |z| < gamma / 2
        1                                   if z >= gamma / 2

    It is continuously differentiable, and exactly 0 or 1 (with gradient
    0) outside `[-gamma/2, gamma/2]`, which is what makes the selection
    exactly sparse once trained.
    """
    z = ops.convert_to_tensor(z)
    cubic = -2.0 / gamma ** 3 * z ** 3 + 3.0 / (2.0 * gamma) * z + 0.5
    return ops.where(z <= -gamma / 2, ops.zeros_like(z),
                     ops.where(z >= gamma / 2, ops.ones_like(z), cubic))


def binary_codes(num_experts):
    """`(num_experts, num_bits)` of 0/1: row `i` is `i` in binary, bit `b`
    (least significant first) in column `b`; `num_bits = ceil(log2 n)`."""
    num_bits = max(1, math.ceil(math.log2(num_experts)))
    return np.array([[(i >> b) & 1 for b in range(num_bits)]
                     for i in range(num_experts)], dtype="float32")


@keras.saving.register_keras_serializable(package="mtrec.layers")
class DSelectKGates(keras.layers.Layer):
    """`num_gates` DSelect-k gates over `num_experts` expert outputs.

    Each gate has `num_nonzeros` (k) single-expert selectors. Selector `j`
    has `m = ceil(log2 n)` logits `z_j`; through the smooth-step `S` they
    give expert `i` the weight `r_j[i] = prod_b (S(z_jb) if bit b of i is
    1 else 1 - S(z_jb))` (the `r_j` sum to 1 over the `2^m` codes). The
    gate weights are `sum_j softmax(w)_j r_j`, with `k` more logits `w`.
    Once every `z` lies outside `[-gamma/2, gamma/2]`, each selector
    points at exactly one expert, so at most k weights per gate are
    nonzero.

    Static gating (the default, the paper's main multi-task variant): `z`
    and `w` are parameters of each gate, so the weights are the same for
    every example. With `per_example=True`, `z` and `w` are linear in the
    gate input (the paper's per-example variant).

    In training the layer adds (`add_loss`) `entropy_weight` times the sum
    over gates and selectors of the entropy of `r_j` (mean over the batch
    when per example), which pushes each selector to a single expert; and,
    when `n` is not a power of 2, the paper's penalty on selectors that
    point at codes `>= n` (no expert): `1 / sum_i r_j[i] - 1` each, 0 once
    all of the selector's weight is on real experts.

    Args:
        num_gates: int. Number of gates (mixtures returned).
        num_experts: int. Number of experts to select from (>= 2).
        num_nonzeros: int. k, the most experts a gate selects. Defaults
            to `2`.
        gamma: float. Width of the smooth-step's cubic part. Defaults to
            `1.0`.
        entropy_weight: float >= 0. Weight of the entropy regulariser.
            Defaults to `0.001`.
        per_example: bool. Per-example instead of static gating. Defaults
            to `False`.

    Call arguments:
        gate_inputs: tensor `(batch, input_dim)` (read only when
            `per_example`).
        expert_outputs: tensor `(batch, num_experts, units)`.
        training: bool. The regularisers are added only in training.

    Returns:
        `(mixtures, weights)`: `(batch, num_gates, units)` and the gate
        weights `(batch, num_gates, num_experts)` (rows sum to at most 1;
        to 1 when `num_experts` is a power of 2).

    Reference: Hazimeh et al., NeurIPS 2021, "DSelect-k: Differentiable
    Selection in the Mixture of Experts with Applications to Multi-Task
    Learning".
    """

    def __init__(self, num_gates, num_experts, num_nonzeros=2, gamma=1.0,
                 entropy_weight=0.001, per_example=False, **kwargs):
        super().__init__(**kwargs)
        self.num_gates = int(num_gates)
        self.num_experts = int(num_experts)
        self.num_nonzeros = int(num_nonzeros)
        if self.num_experts < 2:
            raise ValueError(f"DSelect-k selects among experts and needs num_experts >= 2, "
                             f"got {num_experts}; use more experts or another gate.")
        if not 1 <= self.num_nonzeros <= self.num_experts:
            raise ValueError(f"num_nonzeros (k) must be in [1, num_experts="
                             f"{self.num_experts}], got {num_nonzeros}.")
        self.gamma = float(gamma)
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}.")
        self.entropy_weight = float(entropy_weight)
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}.")
        if isinstance(per_example, np.bool_):
            per_example = bool(per_example)
        if not isinstance(per_example, bool):
            raise ValueError(f"per_example must be True or False, got {per_example!r}.")
        self.per_example = per_example
        self.codes = binary_codes(self.num_experts)
        self.num_bits = self.codes.shape[1]
        self.power_of_2 = self.num_experts == 2 ** self.num_bits

    def build(self, gate_inputs_shape, expert_outputs_shape=None):
        g, k, m = self.num_gates, self.num_nonzeros, self.num_bits
        # Small logits: every selector starts near uniform (S(z) ~ 1/2).
        z_init = keras.initializers.RandomUniform(-self.gamma / 100, self.gamma / 100)
        if self.per_example:
            input_dim = int(gate_inputs_shape[-1])
            self.z_kernel = self.add_weight(name="z_kernel", shape=(g, input_dim, k * m),
                                            initializer=z_init)
            self.z_bias = self.add_weight(name="z_bias", shape=(g, k * m),
                                          initializer=z_init)
            self.w_kernel = self.add_weight(name="w_kernel", shape=(g, input_dim, k),
                                            initializer="random_uniform")
            self.w_bias = self.add_weight(name="w_bias", shape=(g, k),
                                          initializer="random_uniform")
        else:
            self.z_logits = self.add_weight(name="z_logits", shape=(g, k, m),
                                            initializer=z_init)
            self.w_logits = self.add_weight(name="w_logits", shape=(g, k),
                                            initializer="random_uniform")
        self.built = True

    def selectors(self, gate_inputs=None):
        """`(selector_outputs, selector_weights)`: the `r_j` over the
        experts, `(gates, k, experts)` (static) or `(batch, gates, k,
        experts)` (per example), and the softmax weights of the selectors,
        `(gates, k)` or `(batch, gates, k)`."""
        g, k, m = self.num_gates, self.num_nonzeros, self.num_bits
        if self.per_example:
            # (batch, in) x (gates, in, k * m) -> (batch, gates, k, m)
            z = ops.einsum("bi,gij->bgj", gate_inputs, self.z_kernel) + self.z_bias
            z = ops.reshape(z, (-1, g, k, m))
            w = ops.einsum("bi,gij->bgj", gate_inputs, self.w_kernel) + self.w_bias
        else:
            z, w = self.z_logits, self.w_logits
        # (..., k, 1, m) against the codes (experts, m) -> (..., k, experts)
        s = ops.expand_dims(smooth_step(z, self.gamma), -2)
        codes = ops.cast(self.codes, s.dtype)
        r = ops.prod(codes * s + (1.0 - codes) * (1.0 - s), axis=-1)
        # one selector: its weight is 1 (w_logits then do not matter)
        return r, ops.softmax(w, axis=-1) if k > 1 else ops.ones_like(w)

    def call(self, gate_inputs, expert_outputs, training=False):
        r, selector_weights = self.selectors(gate_inputs)
        # sum over the k selectors: (..., gates, experts)
        weights = ops.sum(ops.expand_dims(selector_weights, -1) * r, axis=-2)
        if training:
            self._add_regularisers(r)
        if self.per_example:
            # (batch, gates, experts) x (batch, experts, units)
            mixtures = ops.einsum("bge,beu->bgu", weights, expert_outputs)
        else:
            # (gates, experts) x (batch, experts, units)
            mixtures = ops.einsum("ge,beu->bgu", weights, expert_outputs)
            batch = ops.shape(expert_outputs)[0]
            weights = ops.broadcast_to(weights[None], (batch, self.num_gates,
                                                       self.num_experts))
        return mixtures, weights

    def _add_regularisers(self, r):
        # Sum over gates and selectors; mean over the batch when per example.
        def total(per_selector):
            total = ops.sum(per_selector, axis=(-2, -1))
            return ops.mean(total) if self.per_example else total

        if self.entropy_weight:
            entropy = -ops.sum(r * ops.log(r + _EPSILON), axis=-1)
            self.add_loss(self.entropy_weight * total(entropy))
        if not self.power_of_2:
            # Weight on codes >= num_experts goes nowhere; keep the
            # selectors on real experts (0 once they are).
            self.add_loss(total(1.0 / (ops.sum(r, axis=-1) + _EPSILON) - 1.0))

    def selected_experts(self):
        """For static gates: `(num_gates, num_experts)` bool, the experts
        each gate gives a nonzero weight."""
        if self.per_example:
            raise ValueError("selected_experts() is the static gates' selection; with "
                             "per_example=True it varies by example: read the gate "
                             "weights of a batch instead (model.gate_weights).")
        r, selector_weights = self.selectors()
        weights = np.asarray(ops.sum(ops.expand_dims(selector_weights, -1) * r, axis=-2))
        return weights > 0

    def get_config(self):
        return {**super().get_config(), "num_gates": self.num_gates,
                "num_experts": self.num_experts, "num_nonzeros": self.num_nonzeros,
                "gamma": self.gamma, "entropy_weight": self.entropy_weight,
                "per_example": self.per_example}
