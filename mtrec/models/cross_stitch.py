"""Cross-stitch networks: one column per task, columns mixed after every layer."""

import keras

from mtrec.layers.cross_stitch import CrossStitchBackbone
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class CrossStitch(MultiTaskModel):
    """One MLP column per task, mixed after each layer by a learned
    `(tasks, tasks)` cross-stitch matrix (`mtrec.layers.CrossStitchBackbone`).

    The tasks share only the stitch matrices (GradNorm balances gradients
    on them); the gate diagnostics report each matrix as a gated level
    (gate = task, experts = the task columns, weights = the matrix's row).

    Args:
        schema: adapted `mtrec.Schema`.
        column_units: list of int. Widths of each task's column. Defaults
            to `[16]`.
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        stitch_diagonal: float. Initial weight of a column on itself; the
            rest of each row, `1 - stitch_diagonal`, is split evenly over
            the other columns. Defaults to `0.9`.
        dropout: float.
        fusion: str. `"concat"` (default) or `"gated"` (see
            `MultiTaskModel`); the columns are not grouped by modality.
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation in the columns (per task and
            unit) and the towers. Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.

    Reference: Misra et al., CVPR 2016, "Cross-stitch Networks for
    Multi-task Learning".
    """

    supported_fusions = ("concat", "gated")

    def __init__(self, schema, column_units=(16,), tower_units=(8,), stitch_diagonal=0.9,
                 dropout=0.0, fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        backbone = CrossStitchBackbone(len(schema.tasks), list(column_units),
                                       stitch_diagonal=stitch_diagonal, dropout=dropout,
                                       batch_norm=batch_norm, name="cross_stitch")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.column_units = [int(u) for u in column_units]
        self.stitch_diagonal = float(stitch_diagonal)

    def get_config(self):
        return {**super().get_config(), "column_units": self.column_units,
                "stitch_diagonal": self.stitch_diagonal}
