"""The base class of every mtrec model: raw features in, {task: prediction} out."""

import contextlib
import re
import threading

import numpy as np
import keras
import tensorflow as tf
from keras import ops

from mtrec.data.pandas_dataset import dataframe_arguments
from mtrec.layers.backbone import Backbone
from mtrec.layers.feature_embedding import (
    FeatureEmbedding, initializer_config, modality_groups)
from mtrec.layers.feature_preprocessing import (
    FeaturePreprocessing, batch_size_message, dummy_raw_batch, is_encoded)
from mtrec.layers.legacy_aliases import layout_0_1_0
from mtrec.layers.mlp import check_batch_norm
from mtrec.layers.modality_fusion import ModalityFusion
from mtrec.layers.modality_losses import ModalityLosses, Reconstruction
from mtrec.layers.task_towers import TaskTowers
from mtrec.models.raw_inputs import encoded_in_pipeline
from mtrec.schema import Schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER, check_initializer
from mtrec.training import loss_weighting as loss_weighting_lib
from mtrec.training import distribution, xla
from mtrec.training import steps_per_execution as steps_lib
from mtrec.training.callbacks import LossWeightingLogger
from mtrec.training.distribution import replica_share, undo_replica_share
from mtrec.training.losses import TaskLoss
from mtrec.training.memory_release import ReleaseFreedMemory
from mtrec.training.metrics import default_metrics
from mtrec.utils.names import safe_name, serving_names

#: How the embedding's modality groups reach the backbone.
FUSIONS = ("concat", "gated", "modality_experts")
#: Version of the saved model layout; configs of mtrec 0.1.0 have none (1).
FORMAT_VERSION = 2
#: The arguments of the training objective every `MultiTaskModel` takes
#: (through the named models' `**kwargs`), with their defaults.
OBJECTIVE_ARGUMENTS = {"modality_losses": None, "embedding_l2": 0.0, "kernel_l2": 0.0,
                       "impute_missing": None}
#: The log key of the regularisation term `Omega`.
REGULARIZATION_METRIC = "regularization_loss"
# Names of the weights `kernel_l2` applies to: Dense / einsum kernels
# ("kernel", "kernel_0", DSelect-k's "z_kernel", ...).
_KERNEL_NAME = re.compile(r"(\w+_)?kernel(_\d+)?")
# The models whose test step this thread is running (or tracing): their
# inference calls then also track what only training computes otherwise
# (the modality losses' val_ metrics), from the one embedding of the batch.
# Thread-local: MirroredStrategy runs each replica's step in its own thread.
_TEST_STEPS = threading.local()


def as_adapted_schema(schema):
    """A `Schema` from a Schema or its dict form; raises if not adapted."""
    if isinstance(schema, dict):
        schema = Schema.from_dict(schema)
    if not isinstance(schema, Schema):
        raise ValueError(f"Expected an mtrec.Schema, got {type(schema).__name__}.")
    if not schema.adapted:
        raise ValueError(
            "The schema has not learned its vocabularies and statistics; "
            "call schema.adapt(train_df) before building a model.")
    # Every feature must have its own serving name (the export's signature
    # inputs): refused here, before training, not at export.
    serving_names(schema.feature_names)
    return schema


def check_row_counts(*dicts):
    """Raise, naming each array's length, when the `{name: array}` dicts
    given (features, labels) do not all have the same number of rows;
    anything else (datasets, DataFrames, None) is skipped."""
    sizes = {}
    for values in dicts:
        if isinstance(values, dict):
            sizes.update({name: int(np.shape(v)[0]) for name, v in values.items()
                          if np.ndim(v) > 0 and not isinstance(v, tf.data.Dataset)})
    if len(set(sizes.values())) > 1:
        raise ValueError(batch_size_message(sizes))


class MultiTaskModel(keras.Model):
    """Preprocessing -> embedding -> backbone -> one tower per task.

    Subclasses pass the backbone layer (what is shared between tasks); the
    rest is common. Calls accept either raw features (a dict of columns,
    as served) or the encoded dict produced by `mtrec.data.from_pandas`,
    which runs the same preprocessing once ahead of training.

    Args:
        schema: adapted `mtrec.Schema`.
        backbone: a `mtrec.layers.Backbone` mapping the fused input to a
            list of one tensor per tower task.
        tower_units: list of int. Widths of each task tower.
        dropout: float. Dropout in experts/bottoms and towers.
        tower_tasks: names of the tasks that get a tower (default all);
            the others are derived from the towers' outputs by
            `derive_outputs` (e.g. ESMM's `ctcvr = ctr * cvr`).
        fusion: str. How the features' modality groups (the `modality`
            tags of the specs) reach the backbone: `"concat"` (one
            concatenated vector, the default), `"gated"` (each group
            scaled by a learned per-example softmax weight,
            `ModalityFusion`, then concatenated) or `"modality_experts"`
            (the backbone gets the groups; it must have been built with
            `modalities=modality_groups(schema)`, e.g.
            `MixtureOfExperts(..., modalities=...)`: the models MMoE, OMoE,
            CGC and PLE build it themselves).
        modality_dropout: float in `[0, 1]`. During training, per example
            and per non-tabular modality, the probability that all Text and
            Vector features of that modality are replaced by their learned
            missing embeddings (see `FeatureEmbedding`).
        batch_norm: bool. Batch normalisation in the towers (Dense ->
            BatchNorm -> activation -> dropout, see `mtrec.layers.MLP`); the
            named models also pass it to their backbone. Defaults to `False`.
        embeddings_initializer: Keras initializer name, config dict or
            object for every categorical and multi-hot embedding table; a
            `Categorical` spec's own `embeddings_initializer` takes
            precedence for its rows. Defaults to `"uniform"` (Keras'
            `Embedding` default).
        format_version: int. Layout of the saved weights; `from_config`
            reads 1 for files of mtrec 0.1.0 (whose PLE levels were filed
            under other class names). Leave it at its default.

    The training objective is `sum_t lambda_t L_t + sum_m mu_m R_m + Omega`:
    the task losses with the loss weighting's `lambda_t` (`compile`), and
    the two terms these arguments declare (saved with the model; every
    named model takes them):

        modality_losses: list of auxiliary modality losses `R_m` with their
            weights `mu_m`, as dicts or specs (`mtrec.layers.modality_losses`):
            `{kind: reconstruction, modality: text, weight: 0.1, loss:
            cosine, source: fused}` (predict a modality's group from the
            others) and `{kind: alignment, modalities: [text, tabular],
            weight: 0.1, temperature: 0.1, learn_temperature: true}`
            (symmetric InfoNCE, in-batch negatives). Computed in training
            only, on the examples that have the modality (not missing, not
            dropped by modality dropout); each is logged per epoch
            (unweighted) as e.g. `text_reconstruction_loss`,
            `text_tabular_alignment_loss`, and on the validation data as
            `val_...` (validation's `val_loss` stays the task losses plus
            `Omega`). The served graph and the predictions do not include
            them (except the heads `impute_missing` uses). Defaults to none.
        embedding_l2: float >= 0. L2 coefficient on the embedding tables
            (categorical, multi-hot and text token tables, not the missing
            embeddings or vector projections). Defaults to `0.0`.
        kernel_l2: float >= 0. L2 coefficient on the kernels (Dense and
            einsum weight matrices) of everything outside the feature
            embedding, i.e. the backbone's experts, gates and bottoms and
            the towers and heads (STAR's scenario kernels too); not biases,
            normalisation, cross-stitch or task-view parameters, the fusion
            gate or the modality-loss heads.
            Defaults to `0.0`.
            `Omega = embedding_l2 * sum ||E||^2 + kernel_l2 * sum ||W||^2`,
            set as the variables' Keras regularizers (none when 0), so it is
            in the logged `loss` (and `val_loss`), and logged alone as
            `regularization_loss`.
        impute_missing: list of modalities. When an example lacks modality
            `m` (every Text / Vector feature of `m` missing, or `m` dropped
            by modality dropout in training), the model reads the output of
            `m`'s reconstruction head in place of `m`'s group (its missing
            embeddings), in Keras and in the SavedModel; in training too,
            so the towers learn to read imputed groups, and the task loss
            also trains the head through them. Needs a reconstruction loss
            for `m`. The heads read the groups before imputation. Defaults
            to none.

    Call arguments:
        inputs: dict of raw feature tensors, or an encoded dict.

    Returns:
        dict `{task_name: prediction}`: `(batch,)` for binary (probability)
        and regression, `(batch, num_classes)` for multiclass.
    """

    #: Tasks whose output is reported (metrics) but not trained directly.
    untrained_tasks = ()
    #: The fusions this model supports (a model that embeds the features its
    #: own way, e.g. SingleTask, narrows this).
    supported_fusions = FUSIONS
    #: Whether the model supports modality dropout.
    supports_modality_dropout = True
    #: Whether the model supports modality losses and imputation (it has one
    #: FeatureEmbedding whose groups reach the backbone).
    supports_modality_losses = True

    def __init__(self, schema, backbone, tower_units=(8,), dropout=0.0, tower_tasks=None,
                 fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 format_version=FORMAT_VERSION, modality_losses=None, embedding_l2=0.0,
                 kernel_l2=0.0, impute_missing=None, **kwargs):
        super().__init__(**kwargs)
        self.format_version = int(format_version)
        self.schema = as_adapted_schema(schema)
        self.tower_units = [int(u) for u in tower_units]
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.fusion = check_fusion(fusion)
        self.modality_dropout = modality_dropout
        by_name = {t.name: t for t in self.schema.tasks}
        self.tower_task_names = list(tower_tasks or by_name)
        self._check_fusion_support(backbone)
        check_initializer(embeddings_initializer,
                          f"{type(self).__name__} has embeddings_initializer")
        self.preprocessing = FeaturePreprocessing(self.schema, name="preprocessing")
        self.embedding = FeatureEmbedding(self.schema, modality_dropout=modality_dropout,
                                          embeddings_initializer=embeddings_initializer,
                                          name="embedding")
        self.embeddings_initializer = self.embedding.embeddings_initializer
        self.modality_dropout = self.embedding.modality_dropout
        self.modality_fusion = (ModalityFusion(self.embedding.modalities, name="fusion")
                                if self.fusion == "gated" else None)
        self._init_objective(modality_losses, embedding_l2, kernel_l2, impute_missing)
        self.backbone = backbone
        self.towers = self.make_towers(
            [dict(name=n, kind=by_name[n].kind, num_classes=self.schema.num_classes(by_name[n]),
                  output_range=by_name[n].output_range)
             for n in self.tower_task_names])
        self.build()
        self._set_regularizers()

    def _init_objective(self, modality_losses, embedding_l2, kernel_l2, impute_missing):
        """Check and keep the objective's arguments; make the modality-loss
        heads and the metrics (before build: Keras locks the model then)."""
        name = type(self).__name__
        self.embedding_l2 = _non_negative(embedding_l2, "embedding_l2")
        self.kernel_l2 = _non_negative(kernel_l2, "kernel_l2")
        if isinstance(impute_missing, str):
            impute_missing = [impute_missing]
        self.impute_missing = [str(m) for m in impute_missing or []]
        if (modality_losses or self.impute_missing) and not self.supports_modality_losses:
            raise ValueError(f"{name} embeds the features its own way and takes no "
                             f"modality_losses or impute_missing; use another model.")
        self.modality_loss_heads = (
            ModalityLosses(modality_losses, self.embedding.modalities,
                           self.embedding.group_dims, name="modality_losses")
            if modality_losses else None)
        self.modality_losses = (self.modality_loss_heads.modality_losses
                                if self.modality_loss_heads is not None else [])
        reconstructed = [s["modality"] for s in self.modality_losses
                         if s["kind"] == Reconstruction.kind]
        for m in self.impute_missing:
            if m not in self.embedding.droppable_modalities:
                raise ValueError(
                    f"impute_missing names {m!r}, but only a modality with Text or Vector "
                    f"features can be missing; this schema's are "
                    f"{self.embedding.droppable_modalities}.")
            if m not in reconstructed:
                raise ValueError(
                    f"impute_missing: {m!r} is imputed by its reconstruction head; add "
                    f"{{kind: reconstruction, modality: {m}}} to modality_losses.")
        if len(set(self.impute_missing)) != len(self.impute_missing):
            raise ValueError(f"impute_missing names a modality twice: {self.impute_missing}.")
        self.regularization_tracker = (keras.metrics.Mean(name=REGULARIZATION_METRIC)
                                       if self.embedding_l2 or self.kernel_l2 else None)

    def feature_embeddings(self):
        """The model's `FeatureEmbedding` layers (one, but SingleTask's)."""
        return [self.embedding]

    def regularized_variables(self):
        """`(embedding tables, kernels)`: the variables `embedding_l2` and
        `kernel_l2` apply to (see the class docstring)."""
        tables = [v for e in self.feature_embeddings() for v in e.embedding_tables()]
        apart = [self.preprocessing, *self.feature_embeddings(), self.modality_fusion,
                 self.modality_loss_heads]
        excluded = {id(v) for layer in apart if layer is not None for v in layer.weights}
        kernels = [v for v in self.trainable_weights
                   if id(v) not in excluded and _KERNEL_NAME.fullmatch(v.name)]
        return tables, kernels

    def _set_regularizers(self):
        for coefficient, variables in zip((self.embedding_l2, self.kernel_l2),
                                          self.regularized_variables()):
            if coefficient:
                for variable in variables:
                    variable.regularizer = keras.regularizers.L2(coefficient)

    def regularization_loss(self):
        """`Omega`: float32 scalar, the sum of the trainable regularized
        variables' L2 terms (0 without `embedding_l2` / `kernel_l2`)."""
        terms = [v.regularizer(v) for v in self.trainable_weights
                 if isinstance(v.regularizer, keras.regularizers.L2)]
        return ops.cast(ops.sum(ops.stack(terms)) if terms else 0.0, "float32")

    def _check_fusion_support(self, backbone):
        name = type(self).__name__
        if not isinstance(backbone, Backbone):
            raise ValueError(
                f"{name} needs a backbone subclassing mtrec.layers.Backbone, got "
                f"{type(backbone).__name__}; see 'Write your own backbone' in the README.")
        if self.fusion not in self.supported_fusions or (
                self.modality_dropout and not self.supports_modality_dropout):
            raise ValueError(
                f"{name} embeds the features its own way and supports fusion in "
                f"{list(self.supported_fusions)}"
                f"{'' if self.supports_modality_dropout else ' without modality_dropout'}"
                f"; got fusion={self.fusion!r}, modality_dropout={self.modality_dropout}. "
                f"Use those settings or another model.")
        if self.fusion == "modality_experts" and backbone.modalities is None:
            raise ValueError(
                f"fusion='modality_experts' needs a backbone whose experts are grouped "
                f"by modality; {name}'s {type(backbone).__name__} takes one tensor. "
                f"Build it with modalities=modality_groups(schema) (MMoE, OMoE, CGC "
                f"and PLE do so themselves), or use fusion='concat' / 'gated'.")
        if self.fusion == "modality_experts" and backbone.modalities != modality_groups(
                self.schema):
            raise ValueError(
                f"{type(backbone).__name__} was built for modalities "
                f"{backbone.modalities}, but the schema's groups are "
                f"{modality_groups(self.schema)} (in that order); build it with "
                f"modalities=mtrec.layers.feature_embedding.modality_groups(schema).")
        if self.fusion != "modality_experts" and backbone.modalities is not None:
            raise ValueError(
                f"{type(backbone).__name__} takes the modality groups "
                f"{backbone.modalities}; build the model with "
                f"fusion='modality_experts', not {self.fusion!r}.")
        if len(self.tower_task_names) != backbone.num_tasks:
            raise ValueError(
                f"{name} has {len(self.tower_task_names)} towers "
                f"{self.tower_task_names} but its {type(backbone).__name__} returns "
                f"num_tasks={backbone.num_tasks} tensors; build the backbone with "
                f"num_tasks={len(self.tower_task_names)}.")

    def make_towers(self, tasks):
        """The per-task towers and heads (overridden by chained heads)."""
        return TaskTowers(tasks, tower_units=self.tower_units, dropout=self.dropout,
                          batch_norm=self.batch_norm, name="towers")

    @property
    def task_names(self):
        return self.schema.task_names

    def build(self, input_shape=None):
        # Every shape follows from the schema: build all state now, with one
        # eager pass over a dummy raw batch (this also runs when Keras
        # reloads a saved model, before the weights are restored).
        if self.built:
            return
        if self.modality_loss_heads is not None:
            self.modality_loss_heads.build()
        self.call(dummy_raw_batch(self.schema), training=False)
        self.built = True

    def encode(self, inputs):
        """Raw features -> encoded dict (no-op when already encoded)."""
        return inputs if is_encoded(inputs) else self.preprocessing(inputs)

    def embed(self, encoded, training=False):
        """Encoded features -> what the backbone reads: one tensor
        `(batch, input_dim)`, or the list of modality groups for
        `fusion="modality_experts"`. In training this adds the modality
        losses (`modality_losses`)."""
        if self.fusion == "concat" and self.modality_loss_heads is None:
            return self.embedding(encoded, training=training)
        groups = self.embedded_groups(encoded, training=training)
        if self.fusion == "concat":
            return self.embedding.ungroup(groups)
        if self.fusion == "gated":
            return self.modality_fusion(groups)
        return groups

    def embedded_groups(self, encoded, training=False):
        """Encoded features -> the modality groups the model fuses: the
        embedding's, with `impute_missing`'s imputations. In training this
        adds the weighted modality losses and updates their metrics; in a
        test step (`in_test_step`) it updates the metrics only."""
        # Inference computes the losses only for the val_ metrics of a test
        # step; otherwise it reads only the imputed modalities' sources (at
        # serving, under gated fusion, a "fused" source is a second fusion call).
        losses = self.modality_loss_heads is not None and (training or self.in_test_step())
        if not losses and not self.impute_missing:
            return self.embedding(encoded, training=training, grouped=True)
        groups, present = self.embedding(encoded, training=training, grouped=True,
                                         return_present=True)
        sources = self.reconstruction_sources(groups, None if losses else self.impute_missing)
        reconstructed = {}
        if losses:
            # the heads' predictions come back too: imputation reuses them
            values, reconstructed = self.modality_loss_heads(
                groups, present, sources, return_reconstructions=True)
            if training:
                # validation's val_loss stays the task losses plus Omega
                self.add_loss(self.modality_loss_heads.weighted_sum(values))
            self.modality_loss_heads.track(values, ops.shape(groups[0])[0])
        groups = list(groups)
        for m in self.impute_missing:
            i = self.embedding.modalities.index(m)
            imputed = reconstructed.get(m)
            if imputed is None:
                imputed = self.modality_loss_heads.reconstruct(m, sources[m])
            imputed = ops.cast(imputed, groups[i].dtype)
            groups[i] = ops.where(present[m][:, None], groups[i], imputed)
        return groups

    def reconstruction_sources(self, groups, modalities=None):
        """`{modality: tensor}`: what each reconstruction head reads (see
        `mtrec.layers.modality_losses.Reconstruction`'s `source`), for the
        reconstructed `modalities` given (default: every one)."""
        sources = {}
        for spec in self.modality_loss_heads.reconstructions:
            if modalities is not None and spec.modality not in modalities:
                continue
            i = self.embedding.modalities.index(spec.modality)
            others = [g for j, g in enumerate(groups) if j != i]
            if spec.source == "fused" and self.fusion == "gated":
                masked = [ops.zeros_like(g) if j == i else g for j, g in enumerate(groups)]
                fused = self.modality_fusion(masked)
                # the fused columns of the other groups
                columns = np.concatenate([
                    np.arange(start, start + dim) for j, (start, dim) in enumerate(zip(
                        np.cumsum([0] + self.embedding.group_dims[:-1]),
                        self.embedding.group_dims)) if j != i]).astype("int32")
                sources[spec.modality] = ops.take(fused, columns, axis=1)
            else:
                sources[spec.modality] = others[0] if len(others) == 1 else \
                    ops.concatenate(others, axis=1)
        return sources

    def task_inputs(self, encoded, training=False):
        """Encoded features -> list of one `(batch, units)` tensor per task."""
        return self.backbone(self.embed(encoded, training=training), training=training)

    def fusion_weights(self, inputs):
        """Per-example weight of each modality group (`fusion="gated"`).

        Args:
            inputs: raw or encoded feature dict.

        Returns:
            dict `{modality: np.ndarray (batch,)}`; the weights of an
            example sum to 1.
        """
        if self.fusion != "gated":
            raise ValueError(f"fusion_weights needs fusion='gated'; this model has "
                             f"fusion={self.fusion!r}.")
        groups = self.embedded_groups(self.encode(inputs), training=False)
        _, weights = self.modality_fusion(groups, return_gate_weights=True)
        weights = np.asarray(weights)
        return {m: weights[:, i] for i, m in enumerate(self.embedding.modalities)}

    def call(self, inputs, training=False):
        outputs = self.towers(self.task_inputs(self.encode(inputs), training=training),
                              training=training)
        return float32_outputs(self.derive_outputs(outputs, training=training))

    def derive_outputs(self, outputs, training=False):
        """Tower outputs -> every task's output (identity by default)."""
        return outputs

    def with_tasks(self, tasks, freeze="backbone", data=None, train_tasks=None):
        """A new model of this class for these tasks plus `tasks`, with the
        trained weights copied and new towers; see
        `mtrec.models.task_transfer.with_tasks` (which models are supported,
        what `freeze` fixes)."""
        # Imported here: task_transfer imports the named models, which import this.
        from mtrec.models.task_transfer import with_tasks
        return with_tasks(self, tasks, freeze=freeze, data=data, train_tasks=train_tasks)

    def gate_structure(self):
        """Names of the gates and experts of each gated level (the
        backbone's `gate_structure` over the tower tasks).

        Returns:
            list of `(level_name, gate_names, expert_names)`; empty for
            backbones without gates (SingleTask, SharedBottom).
        """
        return self.backbone.gate_structure(self.tower_task_names)

    def gate_masks(self):
        """Which experts each gate can see: one bool array `(gates, experts)`
        per gated level, in `gate_structure()` order."""
        return self.backbone.gate_masks()

    def _additional_loss(self):
        """Sum of the losses layers added (regularisers, AITM's calibrator);
        None when there are none."""
        if not self.losses:
            return None
        return ops.sum(ops.stack([self._aggregate_additional_loss(l) for l in self.losses]))

    def shared_variables(self):
        """Variables of the last layer the tasks share (GradNorm's W)."""
        return self.backbone.shared_variables()

    def gate_weights(self, inputs):
        """Gate weights of every gated level for a batch.

        Args:
            inputs: raw or encoded feature dict.

        Returns:
            dict `{level_name: np.ndarray (batch, gates, experts)}`, in the
            order of `gate_structure()`.
        """
        if not self.gate_structure():
            raise ValueError(
                f"{type(self).__name__} has no gates; gate diagnostics apply to "
                f"OMoE, MMoE, CGC and PLE.")
        x = self.embed(self.encode(inputs), training=False)
        _, weights = self.backbone(x, training=False, return_gate_weights=True)
        return {level: np.asarray(w)
                for (level, _, _), w in zip(self.gate_structure(), weights)}

    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None,
                loss_weighting="fixed", jit_compile="auto", steps_per_execution="auto",
                **kwargs):
        """Keras `compile` with per-task losses, metrics and loss weighting.

        By default each task gets `TaskLoss(kind)` (cross-entropy, squared
        error or sparse cross-entropy, skipping NaN labels) and a streaming
        metric (AUC, RMSE or accuracy).

        Args:
            optimizer: Keras optimizer or its name.
            loss_weights: dict `{task_name: weight}` for `"fixed"` weighting.
            loss_weighting: how task losses are combined: `"fixed"`,
                `"uncertainty"`, `"gradnorm"`, `"dwa"`, `"pcgrad"`, a dict
                `{"name": ..., **arguments}` or a
                `mtrec.training.LossWeighting`. Validation losses are always
                the plain (fixed-weight) sum, so they compare across epochs.
            jit_compile: `"auto"` (default), True or False: whether the step
                functions are compiled with XLA. Unlike Keras' own flag it
                is decided per call from what the call is fed, because the
                preprocessing's lookups cannot be compiled but encoded
                batches never run them. `"auto"` compiles the training step
                when `fit` is fed encoded batches (`mtrec.data.from_pandas`,
                the streams) for at least `xla.AUTO_MIN_TRAIN_STEPS` steps
                (about 2x faster per step on CPU, after a one-off 2-5 s
                compilation); True compiles training, evaluation and
                prediction and refuses raw-column inputs; False never
                compiles. See `mtrec.training.xla`.
            steps_per_execution: `"auto"` (default) or an int N. An int is
                Keras' setting: N batches per call of the step function in
                fit, evaluate and predict alike (batch callbacks see every
                N-th batch). `"auto"` trains up to 16 batches per call (about
                1.4-1.9x the examples/s of 1 on Census, the same weights)
                and evaluates and predicts one per call (faster there); 1
                when a callback watches each batch. See
                `mtrec.training.steps_per_execution`.
        """
        tasks = self.schema.tasks
        # With the default losses, the TaskLoss objects Keras calls are the
        # ones the loss weighting reads back (`_step_task_losses`), so each
        # task's loss is computed once per step.
        default_loss = loss is None
        if default_loss:
            loss = {t.name: TaskLoss(t.kind, name=f"{safe_name(t.name)}_loss") for t in tasks
                    if t.name not in self.untrained_tasks}
        if metrics is None:
            metrics = {t.name: default_metrics(t.kind) for t in tasks}
        if loss_weights is not None and not isinstance(loss_weights, dict):
            raise ValueError(f"loss_weights must be a dict {{task_name: weight}}, "
                             f"got {loss_weights!r}.")
        tasks = [t for t in tasks if t.name not in self.untrained_tasks]
        self._set_loss_weighting(loss_weighting_lib.get(loss_weighting, tasks, loss_weights))
        fixed = self.loss_weighting.task_weights().numpy().tolist()
        self._task_loss_fns = ([loss[t.name] for t in tasks] if default_loss
                               else [TaskLoss(t.kind) for t in tasks])
        self._reuse_compiled_task_losses = default_loss
        self._requested_jit_compile = xla.check_jit_compile(jit_compile)
        self._xla_plan = {}
        self._requested_steps = steps_lib.check_steps_per_execution(steps_per_execution)
        self._train_function_steps = None
        automatic = self._requested_steps == "auto"
        # Keras' flag stays off: it would refuse True for a model holding
        # lookup layers; make_*_function set it per step function instead.
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics,
                        loss_weights=({t.name: w for t, w in zip(tasks, fixed)}
                                      if isinstance(self.loss_weighting,
                                                    loss_weighting_lib.FixedWeighting)
                                      else None),
                        jit_compile=False,
                        steps_per_execution=1 if automatic else steps_per_execution,
                        **kwargs)
        self._compile_config.config["jit_compile"] = jit_compile
        self._compile_config.config["steps_per_execution"] = steps_per_execution

    def _set_loss_weighting(self, weighting):
        # The weighting's state (e.g. learned log-variances) belongs to the
        # model so it trains and saves with it, but it only exists once
        # compile() is called, after the model is built: attach it past
        # Keras' build lock, replacing any previous one. Keras 3 has no public
        # way to add or replace a sub-layer after build (keras-team/keras#18601;
        # the fix proposed there was not merged), so this is the one place
        # that touches the tracker; the `.keras` layout (`loss_weighting/...`)
        # of files saved by 0.1.0 depends on the attribute staying a sub-layer.
        previous = getattr(self, "loss_weighting", None)
        self._tracker.unlock()
        try:
            if previous is not None and previous in self._layers:
                self._layers.remove(previous)
            self.loss_weighting = weighting
        finally:
            self._tracker.lock()

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and getattr(self, "loss_weighting", None) is not None:
            config = dict(config)
            config["loss_weighting"] = keras.saving.serialize_keras_object(
                self.loss_weighting)
            config.pop("loss_weights", None)
        return config

    def task_losses(self, y, y_pred, sample_weight=None):
        """Unweighted losses of the trained tasks, `(num_trained_tasks,)`."""
        losses = []
        trained = [t for t in self.schema.tasks if t.name not in self.untrained_tasks]
        for task, loss_fn in zip(trained, self._task_loss_fns):
            weight = sample_weight.get(task.name) if isinstance(sample_weight, dict) \
                else sample_weight
            losses.append(loss_fn(y[task.name], y_pred[task.name], sample_weight=weight))
        return ops.stack(losses)

    def _step_task_losses(self, y, y_pred, sample_weight):
        """The trained tasks' losses of this step, `(num_trained_tasks,)`,
        called right after Keras' compiled loss: with the default losses
        these are the values it just computed (and logged), not a second
        computation; with user-given losses, `task_losses` computes them."""
        if self._reuse_compiled_task_losses:
            return ops.stack([fn.last_value for fn in self._task_loss_fns])
        return self.task_losses(y, y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        # Keras' compiled loss: the fixed-weight sum (+ regularisers); it also
        # tracks each task's loss for the logs.
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        self._track_regularization()
        weighting = getattr(self, "loss_weighting", None)
        if (not training or weighting is None
                or isinstance(weighting, loss_weighting_lib.FixedWeighting)):
            return total
        # The weighting sees whole losses; the sum is this replica's share
        # (the extra losses come shared by Keras).
        task_losses = undo_replica_share(self._step_task_losses(y, y_pred, sample_weight))
        weighting.observe(task_losses)
        extra = self._additional_loss()
        return replica_share(weighting.combine(task_losses)) + (0.0 if extra is None else extra)

    def train_step(self, data):
        return distribution.reducible_logs(self._train_step(data))

    def test_step(self, data):
        # The modality losses exist in training calls only (inference, and
        # so the export, stays free of them); inside the test step the
        # inference call also tracks their validation values, from the
        # batch's one embedding (see `in_test_step`).
        with self.test_step_scope():
            return distribution.reducible_logs(super().test_step(data))

    @contextlib.contextmanager
    def test_step_scope(self):
        """Context in which this model's calls (in this thread) are those
        of a test step: `in_test_step()` is True inside."""
        running = _TEST_STEPS.__dict__.setdefault("models", [])
        running.append(self)
        try:
            yield
        finally:
            running.pop()

    def in_test_step(self):
        """Whether this thread is running (or tracing) this model's test
        step: its inference call then also updates the metrics that only
        training calls compute otherwise (the modality losses', e.g.
        `val_text_reconstruction_loss`), without a second embedding."""
        return any(m is self for m in getattr(_TEST_STEPS, "models", ()))

    def _track_regularization(self):
        if self.regularization_tracker is not None:
            # Omega is the same for every example: no batch-size weights.
            self.regularization_tracker.update_state(self.regularization_loss())

    def _train_step(self, data):
        weighting = getattr(self, "loss_weighting", None)
        if weighting is None or not weighting.needs_task_gradients:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape(persistent=True) as tape:
            y_pred = self(x, training=True)
            # Tracks the per-task losses for the logs; the update below uses
            # the task losses themselves.
            tracked = super().compute_loss(x, y, y_pred, sample_weight, training=True)
            self._track_regularization()
            task_losses = self._step_task_losses(y, y_pred, sample_weight)
            extra = self._additional_loss()
        # Keras' loss tracker is the first of the public metrics, named "loss".
        loss_tracker = next(m for m in self.metrics if m.name == "loss")
        loss_tracker.update_state(undo_replica_share(tracked),
                                  sample_weight=tf.shape(next(iter(y.values())))[0])
        variables = self.trainable_weights
        grads = weighting.gradients(tape, task_losses, extra, variables,
                                    self.shared_variables())
        del tape
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20329: Keras reduces the whole first batch with
        # strategy.reduce("MEAN", ...) to build the model from it, which
        # MultiWorkerMirroredStrategy refuses for a dict of features. Only
        # the batch's shapes matter: take this worker's first replica's.
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            for _, _, batches in iterator:
                data_batch = distribution.first_replica_values(next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile_from_config(self, config):
        # Keras skips this for models with a custom compile(); ours takes
        # the same arguments, so restore the saved losses, metrics and
        # optimizer (with its state) as Keras would.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _plan_xla(self, plan):
        """Record which step functions XLA compiles (`{"train": bool, ...}`)
        and drop the built functions whose choice changed, so Keras
        rebuilds them."""
        current = self.__dict__.setdefault("_xla_plan", {})
        for function, compiled in plan.items():
            if current.get(function, False) != compiled:
                setattr(self, f"{function}_function", None)
            current[function] = compiled

    def _requested_jit(self):
        return getattr(self, "_requested_jit_compile", "auto")

    def _make_step_function(self, function, make, force):
        # Keras reads self.jit_compile while it builds a step function.
        self._jit_compile = self.__dict__.get("_xla_plan", {}).get(function, False)
        return make(force)

    def make_train_function(self, force=False):
        return self._make_step_function("train", super().make_train_function, force)

    def make_test_function(self, force=False):
        return self._make_step_function("test", super().make_test_function, force)

    def make_predict_function(self, force=False):
        return self._make_step_function("predict", super().make_predict_function, force)

    def fit(self, x=None, y=None, **kwargs):
        # Besides Keras' arguments: release_memory=False keeps glibc's freed
        # memory resident (no ReleaseFreedMemory callback).
        release_memory = kwargs.pop("release_memory", True)
        # A DataFrame (labels = its task columns) becomes from_pandas batches.
        x, y, kwargs = dataframe_arguments(self.schema, x, y, kwargs, "fit")
        check_row_counts(x, y)
        # Raw-column datasets: lookups in tf.data, ahead of the step.
        x = encoded_in_pipeline(self, x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, tf.data.Dataset):
            validation = kwargs["validation_data"] = encoded_in_pipeline(self, validation)
        elif isinstance(validation, (tuple, list)):
            validation = validation[0]
        self._plan_xla(xla.plan_train(
            self._requested_jit(), self, x, validation, epochs=kwargs.get("epochs", 1),
            steps_per_epoch=kwargs.get("steps_per_epoch"),
            batch_size=kwargs.get("batch_size")))
        # Datasets from mtrec.data are shuffled (or not) by the caller;
        # Keras' shuffle flag does not apply to them.
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)
        # Epoch hooks of the loss weighting (DWA) and the weights in the logs.
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if getattr(self, "loss_weighting", None) is not None:
            callbacks.insert(0, LossWeightingLogger())
        # What the epochs and XLA's compilation freed goes back to the OS
        # (glibc keeps it otherwise, and the resident set climbs per epoch).
        if release_memory and not any(
                isinstance(c, ReleaseFreedMemory) for c in callbacks):
            callbacks.append(ReleaseFreedMemory())
        if not self._automatic_steps():
            return super().fit(x, y, callbacks=callbacks, **kwargs)
        steps = steps_lib.plan_train(self, x, callbacks, kwargs.get("steps_per_epoch"),
                                     kwargs.get("batch_size"))
        if getattr(self, "_train_function_steps", None) != steps:
            self.train_function = None   # it reads steps_per_execution when built
        self._train_function_steps = steps
        self.steps_per_execution = steps
        try:
            return super().fit(x, y, callbacks=callbacks, **kwargs)
        finally:
            self.steps_per_execution = 1

    def _automatic_steps(self):
        return getattr(self, "_requested_steps", None) == "auto"

    @contextlib.contextmanager
    def _one_step_per_call(self):
        """Under `steps_per_execution="auto"`, evaluation and prediction run
        one batch per call, also inside fit (training at N): its validation
        (the validation iterator fit cached was made with N) and a
        callback's predict. The training value comes back afterwards, so a
        retrace of fit's train function still reads N."""
        training_steps = self.steps_per_execution
        if self._automatic_steps():
            self.steps_per_execution = 1
            cached = getattr(self, "_eval_epoch_iterator", None)
            if cached is not None:
                cached.steps_per_execution = 1
        try:
            yield
        finally:
            self.steps_per_execution = training_steps

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        # Validation inside fit keeps fit's plan (and its encoded data).
        if not kwargs.get("_use_cached_eval_dataset"):
            x, y, kwargs = dataframe_arguments(self.schema, x, y,
                                               {"batch_size": batch_size, **kwargs},
                                               "evaluate")
            check_row_counts(x, y)
            x = encoded_in_pipeline(self, x)
            self._plan_xla({"test": xla.plan_inference(self._requested_jit(), self, x, "test")})
        else:
            kwargs["batch_size"] = batch_size
        with self._one_step_per_call():
            return super().evaluate(x, y, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x, _, kwargs = dataframe_arguments(self.schema, x, None,
                                           {"batch_size": batch_size, **kwargs}, "predict")
        check_row_counts(x)
        x = encoded_in_pipeline(self, x)
        self._plan_xla({"predict": xla.plan_inference(self._requested_jit(), self, x,
                                                      "predict")})
        with self._one_step_per_call():
            return super().predict(x, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        # A train function fit built for N steps per call reads an iterator
        # N times; train_on_batch feeds it one batch: build one for 1.
        if getattr(self, "_train_function_steps", None) not in (None, 1):
            self.train_function = None
            self._train_function_steps = None
        return super().train_on_batch(*args, **kwargs)

    def predict_on_batch(self, x):
        check_row_counts(x)
        try:
            return super().predict_on_batch(x)
        except (TypeError, ValueError) as error:
            # Keras converts the arrays first and names none ("Failed to
            # convert a NumPy array to a Tensor (Unsupported object type
            # NoneType)"): find the column, on the error path only.
            raise unconvertible_input(x) or error

    def get_config(self):
        return {**super().get_config(), "schema": self.schema.to_dict(),
                "tower_units": self.tower_units, "dropout": self.dropout,
                "fusion": self.fusion, "modality_dropout": self.modality_dropout,
                "batch_norm": self.batch_norm,
                "embeddings_initializer": initializer_config(self.embeddings_initializer),
                "format_version": self.format_version,
                "modality_losses": [dict(s) for s in self.modality_losses],
                "embedding_l2": self.embedding_l2, "kernel_l2": self.kernel_l2,
                "impute_missing": list(self.impute_missing)}

    @classmethod
    def from_config(cls, config):
        # A config without format_version was written by mtrec 0.1.0.
        return cls(**{"format_version": 1, **config})

    @staticmethod
    def named_backbone(backbone_class, schema, fusion, format_version, *args, **kwargs):
        """The backbone of a named model (MMoE, PLE, ...): `backbone_class(*args,
        modalities=..., **kwargs)`, grouped by the schema's modalities when
        `fusion="modality_experts"`, in the weight layout of `format_version`."""
        modalities = (modality_groups(schema)
                      if check_fusion(fusion) == "modality_experts" else None)
        if format_version < FORMAT_VERSION:
            backbone_class = layout_0_1_0(backbone_class, modalities)
        return backbone_class(*args, modalities=modalities, **kwargs)


def unconvertible_input(x):
    """A ValueError naming the first input of the dict `x` that is not a
    tensor's worth of values (None or mixed types in an object array), or
    None when each converts."""
    if not isinstance(x, dict):
        return None
    for name, values in x.items():
        try:
            tf.convert_to_tensor(values)
        except (TypeError, ValueError) as error:
            return ValueError(
                f"Input '{name}' cannot be read as a tensor ({error}); missing values "
                f"are '' for strings, NaN for numbers and -1 for integer ids "
                f"(Schema.raw_features converts a DataFrame).")
    return None


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not float(value) >= 0:
        raise ValueError(f"{name} must be a number >= 0 (0 turns it off), got {value!r}.")
    return float(value)


def check_fusion(fusion):
    """`fusion` if it is one of `FUSIONS`, else a ValueError saying which are."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {list(FUSIONS)}, got {fusion!r}.")
    return fusion


def float32_outputs(outputs):
    """`{task: prediction}` in float32: under a mixed precision policy the
    layers compute in (b)float16, but losses, metrics and serving read
    float32 predictions."""
    return {name: ops.cast(value, "float32") for name, value in outputs.items()}
