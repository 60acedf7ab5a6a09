"""Adversarial shared-private multi-task learning: a shared encoder kept free
of task identity by a task discriminator, beside one private encoder per task."""

import keras
import numpy as np
import pandas as pd

from mtrec.data.pandas_dataset import DATAFRAME_BATCH_SIZE, from_pandas
from mtrec.layers.shared_private import SharedPrivateBackbone
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class SharedPrivate(MultiTaskModel):
    """A shared MLP and one private MLP per task; each tower reads its
    task's view of the shared features and its private features
    (`mtrec.layers.SharedPrivateBackbone`). A task discriminator, trained
    through a gradient reversal, pushes task identity out of the shared
    views, and an orthogonality penalty keeps shared and private features
    apart (both added to the training loss).

    The discriminator's accuracy is in the fit history as
    `task_discriminator_accuracy` (each training epoch) and
    `val_task_discriminator_accuracy` (the validation data); `1 /
    num_tasks` is chance: the shared views carry no task identity.
    `discriminator_accuracy(data)` computes it on any data.

    The tasks share the shared encoder (its last layer is GradNorm's W);
    there are no gates to diagnose.

    Args:
        schema: adapted `mtrec.Schema`.
        shared_units: list of int. Widths of the shared encoder. Defaults
            to `[16]`.
        private_units: list of int. Widths of each task's private encoder.
            Defaults to `[8]`.
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        discriminator_units: list of int. Hidden widths of the
            discriminator. Defaults to `[16]`.
        adversarial_weight: float >= 0. Scale of the reversed gradient the
            discriminator sends into the shared encoder (the paper's
            lambda). Defaults to `0.05`.
        orthogonality_weight: float >= 0. Weight of the orthogonality
            penalty (the paper's gamma). Defaults to `0.01`.
        dropout: float.
        fusion: str. `"concat"` (default) or `"gated"` (see
            `MultiTaskModel`); the encoders are not grouped by modality.
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation in the encoders and the
            towers. Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.

    Reference: Liu, Qiu and Huang, ACL 2017, "Adversarial Multi-task
    Learning for Text Classification".
    """

    supported_fusions = ("concat", "gated")

    def __init__(self, schema, shared_units=(16,), private_units=(8,), tower_units=(8,),
                 discriminator_units=(16,), adversarial_weight=0.05,
                 orthogonality_weight=0.01, dropout=0.0, fusion="concat",
                 modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        backbone = SharedPrivateBackbone(
            len(schema.tasks), list(shared_units), list(private_units),
            discriminator_units=list(discriminator_units),
            adversarial_weight=adversarial_weight,
            orthogonality_weight=orthogonality_weight, dropout=dropout,
            batch_norm=batch_norm, name="shared_private")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.shared_units = self.backbone.shared_units
        self.private_units = self.backbone.private_units
        self.discriminator_units = self.backbone.discriminator_units
        self.adversarial_weight = self.backbone.adversarial_weight
        self.orthogonality_weight = self.backbone.orthogonality_weight

    def task_inputs(self, encoded, training=False):
        inputs = self.embed(encoded, training=training)
        # The backbone updates the discriminator's accuracy in training calls
        # only (inference, and so the export, stays free of it); a test step
        # asks for it, from the views the call computes anyway, so
        # `val_task_discriminator_accuracy` is the accuracy on the validation
        # batches, not an empty mean.
        track = not training and self.in_test_step()
        return self.backbone(inputs, training=training, track_accuracy=track)

    def discriminator_accuracy(self, data, per_task=False):
        """How often the discriminator tells which task a shared view is
        for, over `data` (inference mode).

        Args:
            data: a raw or encoded feature dict (one batch); an iterable
                of `(features, labels)` batches or of feature dicts (e.g.
                `mtrec.data.from_pandas(df, schema)`); or a DataFrame
                (batched with `from_pandas(..., labels=False)`).
            per_task: bool. Return each task's accuracy instead of the mean.

        Returns:
            float in `[0, 1]`, the fraction of (example, task) views
            assigned to their own task (`1 / num_tasks` is chance); with
            `per_task`, `{task_name: float}`.
        """
        if isinstance(data, pd.DataFrame):
            data = from_pandas(data, self.schema, batch_size=DATAFRAME_BATCH_SIZE,
                               labels=False)
        elif isinstance(data, dict):
            data = [data]
        hits, count = np.zeros(self.backbone.num_tasks), 0
        for batch in data:
            features = batch[0] if isinstance(batch, (tuple, list)) else batch
            # (batch, tasks)
            batch_hits = np.asarray(self.backbone.discriminator_hits(
                self.embed(self.encode(features), training=False)))
            hits += batch_hits.sum(axis=0)
            count += batch_hits.shape[0]
        if not count:
            raise ValueError("discriminator_accuracy got no examples; pass a non-empty "
                             "DataFrame, feature dict or dataset.")
        if per_task:
            return {name: float(h / count) for name, h in zip(self.tower_task_names, hits)}
        return float(hits.sum() / (count * self.backbone.num_tasks))

    def get_config(self):
        return {**super().get_config(), "shared_units": self.shared_units,
                "private_units": self.private_units,
                "discriminator_units": self.discriminator_units,
                "adversarial_weight": self.adversarial_weight,
                "orthogonality_weight": self.orthogonality_weight}
