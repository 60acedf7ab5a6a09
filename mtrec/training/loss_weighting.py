"""How task losses are combined into one training objective.

Independent of the architecture (as in LibMTL): any model takes any
strategy through `model.compile(loss_weighting=...)`.

- `FixedWeighting`: a constant weight per task.
- `UncertaintyWeighting`: Kendall, Gal & Cipolla, CVPR 2018.
- `GradNorm`: Chen et al., ICML 2018.
- `DynamicWeightAverage`: Liu, Johns & Davison, CVPR 2019 (DWA).
- `PCGrad`: Yu et al., NeurIPS 2020 (gradient surgery).

A strategy is a Keras layer so that its state (learned log-variances,
GradNorm weights, DWA's loss history) is tracked, saved with the model and
restored with it. It is never called in serving.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mtrec.schema.task_kinds import task_kind
from mtrec.utils.suggestions import did_you_mean


class LossWeighting(keras.layers.Layer):
    """Base class. Subclasses implement `combine` (and, for gradient-level
    methods, `gradients`).

    Args:
        task_names: list of str, in the model's task order.
        task_kinds: list of str (`binary`, `regression`, `multiclass`).
    """

    #: True when the strategy needs one gradient per task (custom step).
    needs_task_gradients = False

    def __init__(self, task_names=(), task_kinds=(), **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.task_kinds = list(task_kinds)

    @property
    def num_tasks(self):
        return len(self.task_names)

    def build(self, input_shape=None):
        self.built = True

    def combine(self, task_losses):
        """`(num_tasks,)` task losses -> scalar training loss."""
        return ops.sum(task_losses * ops.convert_to_tensor(self.task_weights()))

    def task_weights(self):
        """Current effective weight per task, `(num_tasks,)` tensor."""
        return ops.ones((self.num_tasks,))

    def observe(self, task_losses):
        """Called every training step with the unweighted task losses."""

    def on_epoch_end(self):
        """Called after every training epoch."""

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names,
                "task_kinds": self.task_kinds}


@keras.saving.register_keras_serializable(package="mtrec")
class FixedWeighting(LossWeighting):
    """A constant weight per task (default 1).

    Args:
        weights: dict `{task_name: weight}`; missing tasks get 1.
    """

    def __init__(self, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.weights_by_task = {k: float(v) for k, v in (weights or {}).items()}
        unknown = set(self.weights_by_task) - set(self.task_names)
        if self.task_names and unknown:
            raise ValueError(f"Loss weights name unknown task(s) {sorted(unknown)}; "
                             f"tasks: {self.task_names}.")

    def task_weights(self):
        return ops.convert_to_tensor(
            np.array([self.weights_by_task.get(t, 1.0) for t in self.task_names], "float32"))

    def get_config(self):
        return {**super().get_config(), "weights": self.weights_by_task}


@keras.saving.register_keras_serializable(package="mtrec")
class UncertaintyWeighting(LossWeighting):
    """Learned homoscedastic uncertainty per task (Kendall et al., 2018).

    With `s_t = log sigma_t^2` learned jointly with the model, the loss is

        regression:                 0.5 * exp(-s_t) * L_t + 0.5 * s_t
        binary / multiclass:              exp(-s_t) * L_t + 0.5 * s_t

    (eq. 7 and 10 of the paper: a Gaussian likelihood for regression, a
    softmax/sigmoid scaled by a temperature for classification). A noisy
    task learns a large `s_t` and so a small weight.
    """

    def build(self, input_shape=None):
        self.log_variance = self.add_weight(
            name="log_variance", shape=(self.num_tasks,), initializer="zeros")
        # 1/2 for a Gaussian likelihood (regression), 1 for classification
        self._scale = np.array([task_kind(k).uncertainty_scale
                                for k in self.task_kinds], "float32")
        self.built = True

    def task_weights(self):
        return self._scale * ops.exp(-self.log_variance)

    def combine(self, task_losses):
        return ops.sum(self.task_weights() * task_losses + 0.5 * self.log_variance)


@keras.saving.register_keras_serializable(package="mtrec")
class DynamicWeightAverage(LossWeighting):
    """Dynamic Weight Average (Liu et al., 2019).

    After epoch k >= 2, with `r_t = L_t(k-1) / L_t(k-2)` (mean training loss
    of epochs k-1 and k-2), the weights for epoch k are
    `num_tasks * softmax(r / temperature)`: a task whose loss falls slower
    gets more weight. Weights are 1 for the first two epochs.

    Args:
        temperature: float. Defaults to `2.0` (the paper's value).
    """

    def __init__(self, temperature=2.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def build(self, input_shape=None):
        n = self.num_tasks
        self.weights_now = self.add_weight(name="weights", shape=(n,),
                                           initializer="ones", trainable=False)
        # Mean loss of the last two epochs (row 0 older), and how many
        # epochs have been seen.
        self.history = self.add_weight(name="history", shape=(2, n),
                                       initializer="zeros", trainable=False)
        self.epochs_seen = self.add_weight(name="epochs_seen", shape=(),
                                           initializer="zeros", trainable=False)
        self.loss_sum = self.add_weight(name="loss_sum", shape=(n,),
                                        initializer="zeros", trainable=False)
        self.steps = self.add_weight(name="steps", shape=(), initializer="zeros",
                                     trainable=False)
        self.built = True

    def task_weights(self):
        return ops.convert_to_tensor(self.weights_now)

    def observe(self, task_losses):
        self.loss_sum.assign_add(ops.stop_gradient(task_losses))
        self.steps.assign_add(1.0)

    def on_epoch_end(self):
        steps = float(self.steps.numpy())
        if steps == 0:
            return
        mean = self.loss_sum.numpy() / steps
        history = self.history.numpy()
        history = np.stack([history[1], mean])
        self.history.assign(history)
        self.epochs_seen.assign(self.epochs_seen.numpy() + 1)
        self.loss_sum.assign(np.zeros_like(mean))
        self.steps.assign(0.0)
        if self.epochs_seen.numpy() >= 2:
            ratio = history[1] / np.maximum(history[0], 1e-12)
            logits = ratio / self.temperature
            soft = np.exp(logits - logits.max())
            self.weights_now.assign(self.num_tasks * soft / soft.sum())

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="mtrec")
class GradNorm(LossWeighting):
    """GradNorm (Chen et al., 2018): weights that balance gradient norms.

    Each step, with `G_t = ||grad_W (w_t L_t)||` on the last shared layer W
    and `r_t` the task's relative inverse training rate
    (`(L_t / L_t(0)) / mean_j (L_j / L_j(0))`), the weights descend
    `sum_t |G_t - mean(G) * r_t ** alpha|` (the target held constant),
    then are renormalised to sum to the number of tasks.

    The descent step is taken on `log w_t` with the sign of the gradient
    (`w_t *= exp(-learning_rate * sign(G_t - target_t))`), i.e. what Adam
    does with a steady gradient, in log space. The paper steps on `w`
    directly; with task losses of very different scales (weights that must
    differ by orders of magnitude) additive steps overshoot to zero and
    oscillate, while multiplicative ones settle within a few percent.

    Args:
        alpha: float. Restoring force towards equal training rates.
            Defaults to `1.5`.
        learning_rate: float. Step size of the weight update (relative).
            Defaults to `0.025` (the paper's learning rate for w).
    """

    needs_task_gradients = True

    def __init__(self, alpha=1.5, learning_rate=0.025, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.learning_rate = float(learning_rate)

    def build(self, input_shape=None):
        n = self.num_tasks
        self.weights_now = self.add_weight(name="weights", shape=(n,), initializer="ones",
                                           trainable=False)
        self.initial_losses = self.add_weight(name="initial_losses", shape=(n,),
                                              initializer="zeros", trainable=False)
        self.built = True

    def task_weights(self):
        return ops.convert_to_tensor(self.weights_now)

    def gradients(self, tape, task_losses, extra_loss, variables, shared_variables):
        weights = tf.convert_to_tensor(self.weights_now)
        # grad of sum_t w_t L_t, the weights held constant for this step
        grads = tape.gradient(task_losses, variables, output_gradients=weights)
        grads = _add_gradients(grads, tape, extra_loss, variables)
        # ||grad_W L_t|| on the shared layer; G_t = w_t * norm_t.
        norms = tf.stack([_global_norm(_task_gradient(tape, task_losses, i, shared_variables))
                          for i in range(self.num_tasks)])
        g = weights * norms
        losses = tf.stop_gradient(task_losses)
        # Record L(0) on the first step.
        self.initial_losses.assign(tf.where(
            tf.reduce_all(self.initial_losses == 0.0), losses, self.initial_losses))
        ratio = losses / tf.maximum(self.initial_losses, 1e-12)
        rate = ratio / tf.maximum(tf.reduce_mean(ratio), 1e-12)
        target = tf.reduce_mean(g) * tf.pow(rate, self.alpha)
        # d/dw_t |w_t norm_t - target_t| = sign(.) * norm_t, norm_t >= 0
        new = weights * tf.exp(-self.learning_rate * tf.sign(g - target))
        self.weights_now.assign(new * self.num_tasks / tf.reduce_sum(new))
        return grads

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha,
                "learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="mtrec")
class PCGrad(LossWeighting):
    """Projecting Conflicting Gradients (Yu et al., 2020).

    Each task's gradient (over all trainable weights) is projected, against
    the other tasks in random order, onto the normal plane of any task
    gradient it conflicts with (negative inner product); the projected
    gradients are summed. For two tasks the combined update has a
    non-negative inner product with both task gradients.

    Args:
        seed: int. Seed of the random task order.
    """

    needs_task_gradients = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def gradients(self, tape, task_losses, extra_loss, variables, shared_variables):
        per_task = [_flatten(_task_gradient(tape, task_losses, i, variables), variables)
                    for i in range(self.num_tasks)]
        combined = combine_pcgrad(tf.stack(per_task), self.seed_generator)
        return _add_gradients(_unflatten(combined, variables), tape, extra_loss, variables)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def combine_pcgrad(task_grads, seed=None):
    """PCGrad on a `(num_tasks, num_params)` matrix -> `(num_params,)`.

    `seed` (a `keras.random.SeedGenerator` or int) shuffles the order in
    which each task is projected against the others; None keeps task order.
    """
    num_tasks = task_grads.shape[0]
    projected = []
    for i in range(num_tasks):
        g = task_grads[i]
        order = (tf.range(num_tasks) if seed is None else
                 tf.argsort(keras.random.uniform((num_tasks,), seed=seed)))
        for k in range(num_tasks):
            j = order[k]
            other = tf.gather(task_grads, j)
            dot = tf.reduce_sum(g * other)
            conflict = tf.logical_and(dot < 0.0, tf.not_equal(j, i))
            g = tf.where(conflict, g - dot / tf.maximum(tf.reduce_sum(other * other), 1e-20)
                         * other, g)
        projected.append(g)
    return tf.add_n(projected)


def _task_gradient(tape, task_losses, index, variables):
    """Gradient of task `index`'s loss. (Indexing `task_losses` outside the
    tape would not be recorded, so select it with `output_gradients`.)"""
    select = tf.one_hot(index, tf.shape(task_losses)[0], dtype=task_losses.dtype)
    return tape.gradient(task_losses, variables, output_gradients=select)


def _add_gradients(grads, tape, extra_loss, variables):
    """Add the gradients of `extra_loss` (regularisers; None when absent)."""
    if extra_loss is None:
        return grads
    extra = tape.gradient(extra_loss, variables)
    return [e if g is None else g if e is None else tf.convert_to_tensor(g) + tf.convert_to_tensor(e)
            for g, e in zip(grads, extra)]


def _dense(grad, variable):
    if grad is None:
        return tf.zeros_like(variable)
    return tf.convert_to_tensor(grad)


def _flatten(grads, variables):
    return tf.concat([tf.reshape(_dense(g, v), [-1]) for g, v in zip(grads, variables)], 0)


def _unflatten(flat, variables):
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(tf.reshape(flat[start:start + size], v.shape))
        start += size
    return out


def _global_norm(grads):
    return tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads if g is not None])


STRATEGIES = {
    "fixed": FixedWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DynamicWeightAverage,
    "pcgrad": PCGrad,
}


def get(strategy, tasks, loss_weights=None):
    """A built `LossWeighting` for `tasks` from a name, dict or instance.

    Args:
        strategy: one of `STRATEGIES`' names, a dict `{"name": ..., **args}`,
            or a `LossWeighting` class instance (its tasks are filled in).
        tasks: list of TaskSpec.
        loss_weights: dict for `"fixed"`.
    """
    names, kinds = [t.name for t in tasks], [t.kind for t in tasks]
    if isinstance(strategy, LossWeighting):
        config = strategy.get_config()
        config.update(task_names=names, task_kinds=kinds)
        layer = type(strategy).from_config(config)
    else:
        args = {}
        if isinstance(strategy, dict):
            args = dict(strategy)
            strategy = args.pop("name", None)
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown loss_weighting {strategy!r}; expected one of "
                f"{list(STRATEGIES)}{did_you_mean(strategy, STRATEGIES)}.")
        if strategy == "fixed":
            args.setdefault("weights", loss_weights)
        layer = STRATEGIES[strategy](task_names=names, task_kinds=kinds,
                                     name="loss_weighting", **args)
    layer.build()
    return layer
