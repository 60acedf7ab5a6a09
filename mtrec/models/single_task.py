"""Independent networks per task: the single-task baseline."""

import keras
from keras import ops

from mtrec.layers.feature_embedding import FeatureEmbedding
from mtrec.layers.task_bottoms import TaskBottoms
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class SingleTask(MultiTaskModel):
    """One separate network per task, sharing nothing but the input.

    Each task has its own embedding tables, its own bottom MLP
    (`bottom_units`) and its own tower: training them together is the
    same as training one model per task, which is the baseline of the
    MMoE and PLE papers. The bottoms of all tasks run in one batched op
    (`mtrec.layers.TaskBottoms`).

    Args:
        schema: adapted `mtrec.Schema`.
        bottom_units: list of int. Widths of each task's bottom MLP.
        tower_units: list of int. Widths of each task's tower.
        dropout: float.
        batch_norm: bool. Batch normalisation in the bottoms and towers
            (Dense -> BatchNorm -> activation -> dropout). Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.
    """

    # One embedding per task: the groups of one embedding have nowhere to go.
    supported_fusions = ("concat",)
    supports_modality_dropout = False
    supports_modality_losses = False

    def __init__(self, schema, bottom_units=(16,), tower_units=(8,), dropout=0.0,
                 batch_norm=False, embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 **kwargs):
        schema = as_adapted_schema(schema)
        backbone = TaskBottoms(len(schema.tasks), list(bottom_units), dropout=dropout,
                               batch_norm=batch_norm, name="bottoms")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.bottom_units = [int(u) for u in bottom_units]

    def build(self, input_shape=None):
        if not self.built:
            # One embedding per task, so tasks share no parameters at all.
            self.task_embeddings = [self.embedding] + [
                FeatureEmbedding(self.schema,
                                 embeddings_initializer=self.embeddings_initializer,
                                 name=f"embedding_{i}")
                for i in range(1, len(self.schema.tasks))]
        super().build(input_shape)

    def feature_embeddings(self):
        return list(self.task_embeddings)

    def embed(self, encoded, training=False):
        # (batch, tasks, input_dim): task t's bottom reads task t's embedding
        return ops.stack([emb(encoded, training=training) for emb in self.task_embeddings],
                         axis=1)

    def get_config(self):
        return {**super().get_config(), "bottom_units": self.bottom_units}
