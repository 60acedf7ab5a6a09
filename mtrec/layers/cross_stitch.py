"""Cross-stitch networks: one column per task, mixed after every layer."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.backbone import Backbone
from mtrec.layers.experts import Experts
from mtrec.layers.mlp import check_batch_norm


@keras.saving.register_keras_serializable(package="mtrec.layers")
class CrossStitchBackbone(Backbone):
    """One MLP column per task; after each layer a learned `(tasks, tasks)`
    matrix `alpha` mixes the columns: `h_i' = sum_j alpha[i, j] h_j`.

    The columns of one layer run as one batched op (`Experts` with one
    expert per task); the next layer of column `i` reads the stitched
    `h_i'`, and task `i`'s tower reads the last stitched `h_i'`. `alpha`
    starts near the identity (each column mostly its own, as in the
    paper's initialisation) and is not constrained during training.

    For the gate diagnostics each stitch is a gated level: gate `i` is task
    `i`, its "experts" are the task columns and its weights are row `i` of
    `alpha`, the same for every example (rows need not sum to 1 once
    trained, and may go negative). The stitches are all the tasks share,
    so they are `shared_variables()`, GradNorm's W.

    Args:
        num_tasks: int. Number of tasks (and columns).
        column_units: list of int. Widths of each column's layers; one
            stitch follows each layer.
        stitch_diagonal: float. Initial `alpha[i, i]`; the off-diagonal
            entries start at `(1 - stitch_diagonal) / (num_tasks - 1)`, so
            the rows start summing to 1. `1.0` starts with separate columns.
            Defaults to `0.9`.
        dropout: float. Dropout after each column layer. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation in the columns (per task and
            unit; see `Experts`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)` read by every column.
        return_gate_weights: bool. Also return the stitch matrices.

    Returns:
        list of `num_tasks` tensors `(batch, column_units[-1])`; with
        `return_gate_weights`, also one `(batch, num_tasks, num_tasks)`
        tensor per layer (`alpha` repeated over the batch).

    Reference: Misra et al., CVPR 2016, "Cross-stitch Networks for
    Multi-task Learning".
    """

    def __init__(self, num_tasks, column_units, stitch_diagonal=0.9, dropout=0.0,
                 batch_norm=False, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.column_units = [int(u) for u in column_units]
        if not self.column_units or any(u < 1 for u in self.column_units):
            raise ValueError(f"column_units must list at least one layer width >= 1, "
                             f"got {list(column_units)}.")
        self.stitch_diagonal = float(stitch_diagonal)
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        # One single-layer bank per level: the stitch goes between levels.
        self.columns = [Experts(self.num_tasks, [units], dropout=dropout,
                                batch_norm=self.batch_norm, dtype=self.dtype_policy,
                                name=f"columns_{i}")
                        for i, units in enumerate(self.column_units)]

    def initial_stitch(self):
        """The `(num_tasks, num_tasks)` matrix every stitch starts from."""
        t = self.num_tasks
        if t == 1:
            return np.ones((1, 1), "float32")
        off = (1.0 - self.stitch_diagonal) / (t - 1)
        return (np.full((t, t), off) + np.eye(t) * (self.stitch_diagonal - off)).astype(
            "float32")

    def build(self, input_shape):
        shape = tuple(input_shape)
        initial = self.initial_stitch()

        def stitch_initializer(shape, dtype=None):
            return ops.cast(initial, dtype or "float32")

        self.stitches = []
        for i, (columns, units) in enumerate(zip(self.columns, self.column_units)):
            columns.build(shape)
            shape = (shape[0], self.num_tasks, units)
            self.stitches.append(self.add_weight(
                name=f"stitch_{i}", shape=(self.num_tasks, self.num_tasks),
                initializer=stitch_initializer))
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        x = inputs
        for columns, alpha in zip(self.columns, self.stitches):
            # (batch, tasks, units): each task's column
            x = columns(x, training=training)
            # (tasks, tasks) x (batch, tasks, units) -> (batch, tasks, units)
            x = ops.einsum("ij,bju->biu", ops.cast(alpha, x.dtype), x)
        outputs = [x[:, i, :] for i in range(self.num_tasks)]
        if not return_gate_weights:
            return outputs
        batch = ops.shape(x)[0]
        # (batch, tasks, tasks): the same alpha for every example
        weights = [ops.broadcast_to(ops.cast(alpha, x.dtype)[None],
                                    (batch, self.num_tasks, self.num_tasks))
                   for alpha in self.stitches]
        return outputs, weights

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], self.column_units[-1])] * self.num_tasks

    def gate_structure(self, task_names):
        columns = [f"{name}_column" for name in task_names]
        return [(f"stitch_{i}", list(task_names), columns)
                for i in range(len(self.column_units))]

    def gate_masks(self):
        return [np.ones((self.num_tasks, self.num_tasks), bool)
                for _ in self.column_units]

    def shared_variables(self):
        # The stitches are all the tasks share (the columns are per task);
        # every task's loss reaches all of them but the last one's other rows.
        return list(self.stitches)

    def get_config(self):
        config = {**super().get_config(), "column_units": self.column_units,
                  "stitch_diagonal": self.stitch_diagonal, "dropout": self.dropout,
                  "batch_norm": self.batch_norm}
        config.pop("modalities")
        return config
