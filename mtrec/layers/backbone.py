"""The backbone protocol: what tasks share, and how it describes itself."""

import keras


class Backbone(keras.layers.Layer):
    """Base class of the layers that sit between the embedding and the towers.

    A backbone maps the fused input to one tensor per task and answers for
    itself: which gates and experts it has (`gate_structure`,
    `gate_masks`) and which variables the tasks share (`shared_variables`,
    GradNorm's W). Models, gate diagnostics and export ask it; nothing
    reaches into its attributes or switches on its class, so a new
    architecture is one subclass.

    Subclasses implement `call`; gated ones also `gate_structure` and
    `gate_masks`; ones with a shared layer `shared_variables`.

    Attributes:
        num_tasks: int. Number of task tensors `call` returns.
        modalities: list of str, or None. None: `call` takes one tensor
            `(batch, input_dim)`; a list: `call` takes one tensor per
            modality group, in this order (models build such a backbone
            for `fusion="modality_experts"`).

    Call arguments:
        inputs: tensor `(batch, input_dim)`, or a list of
            `len(modalities)` tensors `(batch, dim_g)`.
        training: bool.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_tasks` tensors `(batch, units)`; with
        `return_gate_weights`, `(outputs, weights)` where `weights` is a
        list with one `(batch, gates, experts)` tensor per gated level
        (empty for an ungated backbone), in `gate_structure` order.
    """

    def __init__(self, num_tasks, modalities=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_tasks) < 1:
            raise ValueError(f"{type(self).__name__} needs num_tasks >= 1, got {num_tasks}.")
        self.num_tasks = int(num_tasks)
        if modalities is not None:
            modalities = [str(m) for m in modalities]
            if not modalities or len(set(modalities)) != len(modalities):
                raise ValueError(f"modalities must be None or a non-empty list of unique "
                                 f"group names, got {modalities!r}.")
        self.modalities = modalities

    def call(self, inputs, training=False, return_gate_weights=False):
        raise NotImplementedError(f"{type(self).__name__} must implement call().")

    def gate_structure(self, task_names):
        """Names of the gates and experts of each gated level.

        Args:
            task_names: list of `num_tasks` task names, in output order.

        Returns:
            list of `(level_name, gate_names, expert_names)`, one per gated
            level, in the order of the gate weights; empty when ungated.
        """
        return []

    def gate_masks(self):
        """Which experts each gate can see: one bool array `(gates,
        experts)` per gated level, in `gate_structure` order."""
        return []

    def shared_variables(self):
        """The variables of the last layer the tasks share (GradNorm's W)."""
        raise ValueError(
            f"{type(self).__name__} has no shared layer (nothing the tasks share), so "
            f"GradNorm has no weights to balance gradients on; use another loss weighting "
            f"or a backbone with shared layers (SharedBottom, OMoE, MMoE, CGC, PLE).")

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "modalities": self.modalities}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "num_outputs" in config:
            # mtrec 0.1.0's MixtureOfExperts and SharedBottom called the
            # number of task outputs `num_outputs`.
            config["num_tasks"] = config.pop("num_outputs")
        return cls(**config)
