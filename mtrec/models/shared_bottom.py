"""Hard parameter sharing: one bottom network for all tasks."""

import keras

from mtrec.layers.shared_bottom import SharedBottomBackbone
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema


@keras.saving.register_keras_serializable(package="mtrec")
class SharedBottom(MultiTaskModel):
    """All tasks read one shared MLP (`bottom_units`), then their towers.

    Args:
        schema: adapted `mtrec.Schema`.
        bottom_units: list of int. Widths of the shared MLP.
        tower_units: list of int. Widths of each task's tower.
        dropout: float.
    """

    def __init__(self, schema, bottom_units=(16,), tower_units=(8,), dropout=0.0, **kwargs):
        schema = as_adapted_schema(schema)
        backbone = SharedBottomBackbone(len(schema.tasks), list(bottom_units),
                                        dropout=dropout, name="shared_bottom")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         **kwargs)
        self.bottom_units = [int(u) for u in bottom_units]

    def get_config(self):
        return {**super().get_config(), "bottom_units": self.bottom_units}
