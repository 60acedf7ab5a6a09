"""Adversarial shared-private sharing: a shared encoder kept free of task
identity by a task discriminator, beside one private encoder per task."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.backbone import Backbone
from mtrec.layers.experts import Experts
from mtrec.layers.gradient_reversal import GradientReversal
from mtrec.layers.mlp import MLP, check_batch_norm

#: Name of the discriminator-accuracy metric in the training logs.
DISCRIMINATOR_METRIC = "task_discriminator_accuracy"
# Added to a view's squared length before its unit-length scaling: keeps the
# gradient at an all-zero view (dead ReLUs) finite, 1/sqrt(eps) = 1000 times
# the upstream one, while views of length >> 1e-3 are scaled to 1.
_EPSILON = 1e-6


def orthogonality_penalty(shared, private):
    """Sum over tasks of `||S_t^T H_t / batch||_F^2`: how much the shared
    features `S_t` and the private features `H_t` of each task co-vary
    over the batch (0 when they are orthogonal).

    The paper's `L_diff` is `sum_t ||S_t^T H_t||_F^2`; dividing by the batch
    size makes it the squared norm of an (uncentred) cross-covariance, so
    its weight does not depend on the batch size.

    Args:
        shared: tensor `(batch, num_tasks, shared_dim)`.
        private: tensor `(batch, num_tasks, private_dim)`.

    Returns:
        float32 scalar tensor.
    """
    shared, private = ops.cast(shared, "float32"), ops.cast(private, "float32")
    batch = ops.cast(ops.shape(shared)[0], "float32")
    # (tasks, shared_dim, private_dim): S_t^T H_t for every task
    cross = ops.einsum("bts,btp->tsp", shared, private) / batch
    return ops.sum(ops.square(cross))


@keras.saving.register_keras_serializable(package="mtrec.layers")
class SharedPrivateBackbone(Backbone):
    """A shared MLP and one private MLP per task; task `t`'s tower reads
    `concat(V_t(shared), private_t)`, where a task discriminator, trained
    through a gradient reversal, keeps task identity out of the shared part.

    Liu et al. train on a set of tasks whose examples are disjoint: the
    discriminator guesses from the shared features which task an example
    came from, and the shared encoder learns to leave it guessing. In
    multi-task recommendation every example carries every task, so the
    shared features `s` of one example are the same for all tasks and a
    discriminator on `s` alone would be at chance by construction. Here
    each task reads the shared features through a view of its own, a
    linear map `V_t` (initialised to the identity, so the model starts as
    a shared bottom beside private encoders): `s_t = s V_t`. The
    discriminator gets every view `s_t` with label `t` and learns to tell
    the tasks' views apart; through the gradient reversal the views and
    the shared encoder learn the opposite, so whatever the shared path
    carries is read the same way by every task, and what is task-specific
    has to go through the private encoders. Because the towers read the
    views, making them alike is a real constraint (unlike a projection
    seen only by the discriminator, which could be made alike for free).

    The losses, added in training (`add_loss`, as
    `MultiTaskModel._additional_loss` sums them):

    - the discriminator's cross-entropy over the `batch x num_tasks` views,
      with weight 1, so the discriminator always learns and its accuracy
      measures the task identity left in the shared views, even with
      `adversarial_weight=0`. The gradient reversal below it multiplies
      the gradient reaching the views and the shared encoder by
      `-adversarial_weight`: their objective is the paper's
      `L_task - adversarial_weight * L_adv` (the min-max game in one
      backward pass; DANN's form);
    - `orthogonality_weight * orthogonality_penalty(views, private)`
      (the paper's `L_diff`, per batch example; see `orthogonality_penalty`).

    The discriminator's accuracy on each training batch (fraction of views
    assigned to their own task; `1 / num_tasks` is chance, i.e. no task
    identity in the shared space) is kept in the metric
    `task_discriminator_accuracy`, which a model reports in its logs.

    Args:
        num_tasks: int. Number of tasks (private encoders, views).
        shared_units: list of int. Widths of the shared encoder.
        private_units: list of int. Widths of each task's private encoder.
        discriminator_units: list of int. Hidden widths of the
            discriminator, before its `num_tasks` logits (`[]`: linear).
            Defaults to `[16]`.
        adversarial_weight: float >= 0. Scale of the reversed gradient
            (the paper's lambda); `0` trains the discriminator without
            letting it act on the shared encoder. Defaults to `0.05`
            (the paper's).
        orthogonality_weight: float >= 0. Weight of the orthogonality
            penalty (the paper's gamma). Defaults to `0.01` (the paper's).
        dropout: float. Dropout in the shared and private encoders.
            Defaults to `0.0`.
        batch_norm: bool. Batch normalisation in the shared and private
            encoders. Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        training: bool. The losses and the metric are updated only then.
        track_accuracy: bool. Update the discriminator's accuracy metric
            in an inference call too (a model's test step: the accuracy on
            validation batches), from the views this call computes anyway.
            Defaults to `False`.

    Returns:
        list of `num_tasks` tensors `(batch, shared_units[-1] +
        private_units[-1])`: task `t`'s view of the shared features, then
        its private features.

    Reference: Liu, Qiu and Huang, ACL 2017, "Adversarial Multi-task
    Learning for Text Classification".
    """

    def __init__(self, num_tasks, shared_units, private_units, discriminator_units=(16,),
                 adversarial_weight=0.05, orthogonality_weight=0.01, dropout=0.0,
                 batch_norm=False, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.shared_units = _widths(shared_units, "shared_units")
        self.private_units = _widths(private_units, "private_units")
        self.discriminator_units = [int(u) for u in discriminator_units]
        self.adversarial_weight = _non_negative(adversarial_weight, "adversarial_weight")
        self.orthogonality_weight = _non_negative(orthogonality_weight,
                                                  "orthogonality_weight")
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.shared = MLP(self.shared_units, dropout=dropout, batch_norm=self.batch_norm,
                          dtype=self.dtype_policy, name="shared")
        # The private encoders run as one batched op (one "expert" per task).
        self.private = Experts(self.num_tasks, self.private_units, dropout=dropout,
                               batch_norm=self.batch_norm, dtype=self.dtype_policy,
                               name="private")
        self.reversal = GradientReversal(self.adversarial_weight, dtype=self.dtype_policy,
                                         name="gradient_reversal")
        self.discriminator_hidden = MLP(self.discriminator_units, dtype=self.dtype_policy,
                                        name="discriminator_hidden")
        self.discriminator_logits = keras.layers.Dense(self.num_tasks,
                                                       dtype=self.dtype_policy,
                                                       name="discriminator_logits")
        self.accuracy_tracker = keras.metrics.Mean(name=DISCRIMINATOR_METRIC)

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.shared.build(shape)
        self.private.build(shape)
        width = self.shared_units[-1]
        self.task_views = self.add_weight(
            name="task_views", shape=(self.num_tasks, width, width),
            initializer=_identities)
        # the discriminator reads the views, (batch, tasks, shared width)
        views_shape = (shape[0], self.num_tasks, width)
        self.discriminator_hidden.build(views_shape)
        hidden = self.discriminator_units[-1] if self.discriminator_units else width
        self.discriminator_logits.build(views_shape[:-1] + (hidden,))
        self.built = True

    def shared_views(self, inputs, training=False):
        """Every task's view of the shared features, `(batch, num_tasks,
        shared_units[-1])`."""
        shared = self.shared(inputs, training=training)
        # (batch, s) x (tasks, s, s) -> (batch, tasks, s)
        return ops.einsum("bi,tij->btj", shared, ops.cast(self.task_views, shared.dtype))

    def discriminate(self, views):
        """The discriminator's task logits of views `(batch, num_tasks,
        width)`: float32 `(batch, num_tasks, num_tasks)`, row `[b, t]` the
        logits of view `t` of example `b`. The discriminator reads each
        view scaled to unit length: through the reversed gradient the
        encoder could otherwise fool it by growing the views (the
        discriminator's logits grow with them), driving its loss up
        without bound instead of removing task identity."""
        dtype = views.dtype
        views = ops.cast(views, "float32")
        # x / sqrt(|x|^2 + eps): at an all-zero view ops.normalize's clipped
        # rsqrt gives a 1e6-times gradient eagerly and NaN under XLA.
        views = views * ops.rsqrt(ops.sum(ops.square(views), axis=-1, keepdims=True)
                                  + _EPSILON)
        logits = self.discriminator_logits(
            self.discriminator_hidden(ops.cast(views, dtype)))
        return ops.cast(logits, "float32")

    def discriminator_hits(self, inputs):
        """Whether the discriminator assigns each view to its own task.

        Args:
            inputs: tensor `(batch, input_dim)` (inference mode).

        Returns:
            float32 tensor `(batch, num_tasks)`: 1 where view `t` of an
            example is classified as task `t`, else 0.
        """
        return self._hits(self.discriminate(self.shared_views(inputs, training=False)))

    def _hits(self, logits):
        tasks = ops.arange(self.num_tasks, dtype="int32")
        return ops.cast(ops.equal(ops.argmax(logits, axis=-1), tasks[None]), "float32")

    def call(self, inputs, training=False, return_gate_weights=False, track_accuracy=False):
        views = self.shared_views(inputs, training=training)
        # (batch, tasks, private_units[-1])
        private = self.private(inputs, training=training)
        if training:
            self._add_adversarial_losses(views, private)
        elif track_accuracy:
            self.accuracy_tracker.update_state(self._hits(self.discriminate(views)))
        # (batch, tasks, shared + private) -> one tensor per task
        joint = ops.concatenate([views, ops.cast(private, views.dtype)], axis=-1)
        outputs = [joint[:, t, :] for t in range(self.num_tasks)]
        return (outputs, []) if return_gate_weights else outputs

    def _add_adversarial_losses(self, views, private):
        logits = self.discriminate(self.reversal(views))
        # (batch, tasks): view t's label is t
        labels = ops.broadcast_to(ops.arange(self.num_tasks, dtype="int32")[None],
                                  ops.shape(logits)[:2])
        self.add_loss(ops.mean(ops.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)))
        self.accuracy_tracker.update_state(self._hits(logits))
        if self.orthogonality_weight:
            self.add_loss(self.orthogonality_weight * orthogonality_penalty(views, private))

    def compute_output_shape(self, input_shape):
        width = self.shared_units[-1] + self.private_units[-1]
        return [(input_shape[0], width)] * self.num_tasks

    def shared_variables(self):
        return self.shared.dense_layers[-1].trainable_weights

    def get_config(self):
        config = {**super().get_config(), "shared_units": self.shared_units,
                  "private_units": self.private_units,
                  "discriminator_units": self.discriminator_units,
                  "adversarial_weight": self.adversarial_weight,
                  "orthogonality_weight": self.orthogonality_weight,
                  "dropout": self.dropout, "batch_norm": self.batch_norm}
        config.pop("modalities")
        return config


def _identities(shape, dtype=None):
    """Initializer of the `(tasks, width, width)` views: the identity each."""
    tasks, width, _ = shape
    return ops.cast(np.broadcast_to(np.eye(width, dtype="float32"), (tasks, width, width)),
                    dtype or "float32")


def _widths(units, name):
    widths = [int(u) for u in units]
    if not widths or any(u < 1 for u in widths):
        raise ValueError(f"SharedPrivateBackbone needs {name} to list at least one layer "
                         f"width >= 1, got {list(units)}.")
    return widths


def _non_negative(value, name):
    value = float(value)
    if not value >= 0:
        raise ValueError(f"SharedPrivateBackbone needs {name} >= 0, got {value}.")
    return value
