"""Hard parameter sharing: one bottom network for all tasks."""

import keras

from mtrec.layers.shared_bottom import SharedBottomBackbone
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class SharedBottom(MultiTaskModel):
    """All tasks read one shared MLP (`bottom_units`), then their towers.

    Args:
        schema: adapted `mtrec.Schema`.
        bottom_units: list of int. Widths of the shared MLP.
        tower_units: list of int. Widths of each task's tower.
        dropout: float.
        batch_norm: bool. Batch normalisation in the shared MLP and the
            towers (Dense -> BatchNorm -> activation -> dropout). Defaults to
            `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.
    """

    def __init__(self, schema, bottom_units=(16,), tower_units=(8,), dropout=0.0,
                 batch_norm=False, embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 **kwargs):
        schema = as_adapted_schema(schema)
        backbone = SharedBottomBackbone(len(schema.tasks), list(bottom_units),
                                        dropout=dropout, batch_norm=batch_norm,
                                        name="shared_bottom")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.bottom_units = [int(u) for u in bottom_units]

    def get_config(self):
        return {**super().get_config(), "bottom_units": self.bottom_units}
