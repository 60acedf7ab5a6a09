"""Shared experts, each task mixing at most k of them (DSelect-k gates)."""

import numpy as np
import keras

from mtrec.layers.dselect_k_gates import DSelectKGates
from mtrec.layers.mixture_of_experts import MixtureOfExperts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class DSelectKBackbone(MixtureOfExperts):
    """MMoE's experts with DSelect-k gates: each task's gate selects at most
    `num_nonzeros` (k) of the experts, exactly once trained.

    Everything but the gates is `MixtureOfExperts` (experts, OMoE with
    `num_gates=1`, experts grouped by modality); the gates are
    `DSelectKGates`, static by default (one selection per task, the
    paper's multi-task variant) or per example. Their regularisers
    (entropy of the selectors, and the reachability penalty when the
    number of experts is not a power of 2) are added as layer losses in
    training.

    Args:
        num_tasks: int. Number of task tensors returned.
        num_experts: int. Number of experts (per modality group when
            `modalities` is given); at least 2 in all.
        expert_units: list of int. Widths of each expert's layers.
        num_nonzeros: int. k: the most experts a task selects. Defaults
            to `2`.
        gamma: float. Smooth-step width. Defaults to `1.0`.
        entropy_weight: float. Weight of the entropy regulariser. Defaults
            to `0.001`.
        per_example: bool. Per-example instead of static gates. Defaults
            to `False`.
        num_gates, modalities, dropout, batch_norm: as `MixtureOfExperts`.

    Call arguments / Returns: as `MixtureOfExperts`; the gate weights of a
    static gate are the same for every example.

    Reference: Hazimeh et al., NeurIPS 2021, "DSelect-k: Differentiable
    Selection in the Mixture of Experts with Applications to Multi-Task
    Learning".
    """

    def __init__(self, num_tasks, num_experts, expert_units, num_nonzeros=2, gamma=1.0,
                 entropy_weight=0.001, per_example=False, num_gates=None, modalities=None,
                 dropout=0.0, batch_norm=False, **kwargs):
        # Set before MixtureOfExperts.__init__: it builds the gates with
        # make_gates, which reads them.
        self.num_nonzeros = int(num_nonzeros)
        self.gamma = float(gamma)
        self.entropy_weight = float(entropy_weight)
        self.per_example = per_example
        super().__init__(num_tasks, num_experts, expert_units, num_gates=num_gates,
                         modalities=modalities, dropout=dropout, batch_norm=batch_norm,
                         **kwargs)
        self.per_example = self.gates.per_example

    def make_gates(self, num_experts):
        return DSelectKGates(self.num_gates, num_experts, num_nonzeros=self.num_nonzeros,
                             gamma=self.gamma, entropy_weight=self.entropy_weight,
                             per_example=self.per_example, dtype=self.dtype_policy,
                             name="gates")

    def gate_masks(self):
        return [np.ones((self.num_gates, self.gates.num_experts), bool)]

    def selected_experts(self, task_names):
        """Which experts each static gate selected (nonzero weight).

        Args:
            task_names: list of `num_tasks` task names, in output order.

        Returns:
            dict `{gate_name: [expert names]}`, gates named as in
            `gate_structure` (the tasks, or `"all_tasks"` for one gate).
        """
        (_, gates, experts), = self.gate_structure(task_names)
        chosen = self.gates.selected_experts()
        return {gate: [e for e, on in zip(experts, row) if on]
                for gate, row in zip(gates, chosen)}

    def get_config(self):
        return {**super().get_config(), "num_nonzeros": self.num_nonzeros,
                "gamma": self.gamma, "entropy_weight": self.entropy_weight,
                "per_example": self.per_example}
