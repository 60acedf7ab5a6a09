"""Each loss weighting strategy's defining property on a small problem."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.training import (DynamicWeightAverage, FixedWeighting, GradNorm, PCGrad,
                            UncertaintyWeighting, combine_pcgrad)


def two_regressions(rows=2000, noise=(0.1, 2.0), scale=(1.0, 1.0), seed=0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    signal = x1 + 0.5 * x2
    df = pd.DataFrame({"x1": x1.astype("float32"), "x2": x2.astype("float32")})
    df["a"] = scale[0] * (signal + rng.normal(scale=noise[0], size=rows))
    df["b"] = scale[1] * (signal + rng.normal(scale=noise[1], size=rows))
    schema = mtrec.Schema.infer(df, tasks={"a": "regression", "b": "regression"},
                                verbose=False).adapt(df)
    return df, schema


def fit(schema, df, weighting, epochs=4, lr=0.01, model_cls=mtrec.models.SharedBottom):
    keras.utils.set_random_seed(0)
    model = model_cls(schema, **({"bottom_units": [8]} if model_cls is mtrec.models.SharedBottom
                                 else {}), tower_units=[8])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss_weighting=weighting)
    history = model.fit(mtrec.data.from_pandas(df, schema, batch_size=64, shuffle=True,
                                               seed=0), epochs=epochs, verbose=0)
    return model, history


def test_uncertainty_gives_the_low_noise_task_the_larger_weight():
    df, schema = two_regressions()
    model, history = fit(schema, df, "uncertainty", epochs=6)
    weights = np.asarray(model.loss_weighting.task_weights())
    # sigma^2 tracks each task's residual variance: 0.01 vs 4
    assert weights[0] > 5 * weights[1]
    assert history.history["weight_a"][-1] == pytest.approx(float(weights[0]))


def test_uncertainty_formula_per_task_kind():
    layer = UncertaintyWeighting(task_names=["r", "c"], task_kinds=["regression", "binary"])
    layer.build()
    layer.log_variance.assign([np.log(4.0), np.log(2.0)])
    losses = tf.constant([8.0, 3.0])
    expected = 0.5 / 4 * 8 + 0.5 * np.log(4.0) + 1 / 2 * 3 + 0.5 * np.log(2.0)
    assert float(layer.combine(losses)) == pytest.approx(expected, rel=1e-6)


def test_fixed_weighting_sums_weighted_losses_and_rejects_unknown_tasks():
    layer = FixedWeighting(weights={"b": 3.0}, task_names=["a", "b"], task_kinds=["binary"] * 2)
    assert float(layer.combine(tf.constant([2.0, 5.0]))) == pytest.approx(17.0)
    with pytest.raises(ValueError, match="unknown task"):
        FixedWeighting(weights={"zz": 1.0}, task_names=["a"], task_kinds=["binary"])


def test_fixed_weights_reach_the_training_loss(table, schema):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4])
    model.compile(loss_weights={"click": 2.0, "spend": 0.0, "grade": 0.0})
    x, y = next(iter(mtrec.data.from_pandas(table, schema, batch_size=50)))
    pred = model(x)
    click = float(mtrec.training.TaskLoss("binary")(y["click"], pred["click"]))
    assert float(model.compute_loss(x, y, pred)) == pytest.approx(2 * click, rel=1e-5)


def test_dwa_weights_by_hand():
    layer = DynamicWeightAverage(temperature=2.0, task_names=["a", "b"],
                                 task_kinds=["binary"] * 2)
    layer.build()
    for epoch_losses in ([1.0, 1.0], [0.5, 0.9]):
        layer.observe(tf.constant(epoch_losses))
        layer.on_epoch_end()
    ratio = np.array([0.5, 0.9])
    expected = 2 * np.exp(ratio / 2) / np.exp(ratio / 2).sum()
    np.testing.assert_allclose(np.asarray(layer.task_weights()), expected, rtol=1e-6)
    # the slower-falling task b gets more weight
    assert expected[1] > expected[0]


def test_dwa_keeps_unit_weights_for_two_epochs():
    df, schema = two_regressions(rows=400)
    _, history = fit(schema, df, "dwa", epochs=3)
    assert history.history["weight_a"][0] == 1.0
    assert history.history["weight_a"][1] != 1.0  # updated after epoch 2


def test_pcgrad_by_hand_for_a_conflict():
    g = tf.constant([[1.0, 0.0], [-1.0, 1.0]])
    # g1 -> g1 - (-1/2) g2 = [0.5, 0.5]; g2 -> g2 - (-1/1) g1 = [0, 1]
    np.testing.assert_allclose(combine_pcgrad(g).numpy(), [0.5, 1.5])
    # no conflict: plain sum
    np.testing.assert_allclose(combine_pcgrad(tf.constant([[1.0, 0.0], [1.0, 1.0]])).numpy(),
                               [2.0, 1.0])


def test_pcgrad_update_never_opposes_a_task_gradient():
    rng = np.random.default_rng(0)
    seed = keras.random.SeedGenerator(1)
    for _ in range(200):
        g = tf.constant(rng.normal(size=(2, 7)).astype("float32"))
        combined = combine_pcgrad(g, seed).numpy()
        assert np.all(g.numpy() @ combined >= -1e-5)


def test_pcgrad_trains():
    df, schema = two_regressions(rows=600)
    _, plain = fit(schema, df, "fixed", epochs=3)
    _, history = fit(schema, df, PCGrad(seed=0), epochs=3)
    # learns about as fast as the plain sum on this conflict-free problem
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert history.history["loss"][-1] < 1.2 * plain.history["loss"][-1]


def gradient_norm_ratio(model, x, y):
    """max/min over tasks of ||grad_W w_t L_t|| on the shared layer."""
    with tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(y, model(x, training=True))
    weights = np.asarray(model.loss_weighting.task_weights())
    norms = []
    for i, w in enumerate(weights):
        select = tf.one_hot(i, len(weights))
        grads = tape.gradient(losses, model.shared_variables(), output_gradients=select)
        norms.append(w * float(tf.linalg.global_norm(grads)))
    return max(norms) / min(norms)


def test_gradnorm_equalises_gradient_norms():
    # Task b's labels are 30x larger, so its gradients dwarf task a's.
    df, schema = two_regressions(rows=1500, noise=(0.3, 0.3), scale=(1.0, 30.0))
    x, y = next(iter(mtrec.data.from_pandas(df, schema, batch_size=1500)))
    plain, _ = fit(schema, df, "fixed", epochs=4)
    balanced, history = fit(schema, df, GradNorm(alpha=0.0, learning_rate=0.05), epochs=4)
    assert history.history["weight_a"][-1] > history.history["weight_b"][-1]
    assert gradient_norm_ratio(balanced, x, y) < gradient_norm_ratio(plain, x, y) / 5


def test_gradnorm_needs_a_shared_layer(table, schema):
    model = mtrec.models.SingleTask(schema)
    model.compile(loss_weighting="gradnorm")
    with pytest.raises(ValueError, match="no shared layer"):
        model.fit(mtrec.data.from_pandas(table, schema, batch_size=50), epochs=1, verbose=0)


def test_unknown_strategy_suggests_the_nearest(schema):
    model = mtrec.models.MMoE(schema, num_experts=2)
    with pytest.raises(ValueError, match="did you mean 'uncertainty'"):
        model.compile(loss_weighting="uncertainity")


@pytest.mark.parametrize("strategy", ["uncertainty", "gradnorm", "dwa", "pcgrad"])
def test_strategy_state_survives_keras_round_trip(table, schema, tmp_path, strategy):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4])
    model.compile(loss_weighting=strategy)
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=100), epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert type(again.loss_weighting) is type(model.loss_weighting)
    np.testing.assert_allclose(np.asarray(again.loss_weighting.task_weights()),
                               np.asarray(model.loss_weighting.task_weights()))


@pytest.mark.parametrize("strategy", ["fixed", "uncertainty", "pcgrad"])
def test_each_task_loss_is_computed_once_per_step(table, schema, monkeypatch, strategy):
    # Keras' compiled loss computes (and logs) each task's loss; the loss
    # weighting must reuse those values, not compute every loss again.
    from mtrec.training import losses

    calls = []
    original = losses.per_example_loss

    def counting(kind, y_true, y_pred):
        calls.append(kind)
        return original(kind, y_true, y_pred)

    monkeypatch.setattr(losses, "per_example_loss", counting)
    model = mtrec.models.MMoE(schema, num_experts=2)
    model.compile(loss_weighting=strategy, run_eagerly=True)
    batch = next(iter(mtrec.data.from_pandas(table, schema, batch_size=64)))
    model.train_on_batch(*batch)
    assert len(calls) == len(schema.tasks)


def test_user_given_losses_still_drive_the_weighting(table, schema):
    # With losses of the user's own, the weighting computes the task losses
    # itself (mtrec's TaskLoss per kind), so training still works.
    model = mtrec.models.MMoE(schema, num_experts=2)
    loss = {t.name: mtrec.training.TaskLoss(t.kind) for t in schema.tasks}
    model.compile(loss=loss, loss_weighting="uncertainty")
    batch = next(iter(mtrec.data.from_pandas(table, schema, batch_size=64)))
    logs = model.train_on_batch(*batch, return_dict=True)
    assert np.isfinite(logs["loss"])
