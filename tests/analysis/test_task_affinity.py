"""Tests for mtrec.analysis.task_affinity: TAG's lookahead affinity."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.analysis import TaskAffinity, lookahead, shared_parameters, task_affinity
from mtrec.data import synthetic
from mtrec.training.losses import TaskLoss

# y0 and y1: task weights with cosine 0.9; y2 unrelated to both.
CORRELATIONS = [[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]]
DIM = 16


@pytest.fixture(scope="module")
def correlated():
    """Three MMoE §3.2 regression tasks (4,000 rows) and their schema."""
    x, y = synthetic.generate_tasks(4000, CORRELATIONS, dim=DIM, seed=0)
    frame = pd.DataFrame(x.astype("float32"), columns=[f"x{i:02d}" for i in range(DIM)])
    for k in range(3):
        frame[f"y{k}"] = y[:, k].astype("float32")
    schema = mtrec.Schema([mtrec.Numeric(c) for c in frame.columns[:DIM]],
                          {f"y{k}": "regression" for k in range(3)}).adapt(frame)
    return frame, schema


def _shared_bottom(schema, seed):
    keras.utils.set_random_seed(seed)
    model = mtrec.models.SharedBottom(schema, bottom_units=[32], tower_units=[8])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def _pair_and_cross(matrix):
    """Mean of Z[0->1] and Z[1->0]; the larger such mean of the two pairs
    involving task 2."""
    z = np.asarray(matrix)
    return (z[0, 1] + z[1, 0]) / 2, max(z[0, 2] + z[2, 0], z[1, 2] + z[2, 1]) / 2


def test_shared_parameters_are_everything_before_the_towers(schema):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[3])
    shared = {id(v) for v in shared_parameters(model)}
    before_towers = {id(v) for layer in (model.embedding, model.backbone)
                     for v in layer.trainable_variables}
    towers = {id(v) for v in model.towers.trainable_variables}
    assert shared == before_towers and not shared & towers
    assert shared | towers == {id(v) for v in model.trainable_variables}
    # wider than GradNorm's last shared layer, which it contains
    assert {id(v) for v in model.shared_variables()} < shared


def test_lookahead_restores_the_variables_and_matches_a_step_by_hand(table, schema):
    # Every task kind, embeddings (sparse gradients) included.
    model = mtrec.models.SharedBottom(schema, bottom_units=[8], tower_units=[4])
    x, y = next(iter(mtrec.data.from_pandas(table, schema, batch_size=128)))
    weights = [w.numpy().copy() for w in model.weights]
    affinity, cosine, before = lookahead(model, x, y, learning_rate=0.5)
    for w, saved in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), saved, err_msg=w.path)

    # By hand, eagerly: task 0's SGD step on the shared variables.
    variables = shared_parameters(model)
    losses = [TaskLoss(t.kind) for t in schema.tasks]

    def task_losses():
        pred = model(x, training=False)
        return [fn(y[t.name], pred[t.name]) for t, fn in zip(schema.tasks, losses)]

    with tf.GradientTape() as tape:
        first = task_losses()[0]
    grads = tape.gradient(first, variables)
    for v, g in zip(variables, grads):
        v.assign(v - 0.5 * tf.convert_to_tensor(g))
    after = np.array([float(l) for l in task_losses()])
    expected = 1.0 - after / before
    np.testing.assert_allclose(affinity[0], expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(affinity) > 1e-6)    # each step moved every loss
    np.testing.assert_allclose(np.diag(cosine), 1.0, rtol=1e-5)
    np.testing.assert_allclose(cosine, cosine.T, rtol=1e-5, atol=1e-7)


# 100 steps run in ~1.5 s, but tracing Keras' training step and the
# lookahead costs 4-5 s more (7-14 s on the shared 2-core host), over the
# 5 s of the default run; the lookahead itself is tested fast above.
@pytest.mark.slow
def test_the_correlated_pair_has_the_higher_affinity(correlated, tmp_path):
    frame, schema = correlated
    model = _shared_bottom(schema, seed=1)
    data = mtrec.data.from_pandas(frame, schema, batch_size=128, shuffle=True, seed=0,
                                  drop_remainder=True)
    start = [w.numpy().copy() for w in model.trainable_weights]
    result = task_affinity(model, data, steps=100, learning_rate=0.01)
    pair, cross = _pair_and_cross(result.matrix)
    assert pair > 1.5 * cross, result.to_frame()
    pair, cross = _pair_and_cross(result.gradient_cosine)
    assert pair > cross, result.gradient_cosine

    assert result.task_names == ["y0", "y1", "y2"]
    assert result.matrix.shape == result.stderr.shape == (3, 3)
    assert (result.num_steps, result.num_measured) == (100, 100)
    assert result.num_shared_parameters == sum(int(np.prod(v.shape))
                                              for v in shared_parameters(model))
    np.testing.assert_allclose(result.gradient_cosine, result.gradient_cosine.T, atol=1e-6)
    # the joint updates ran: one optimizer step per training step
    assert int(model.optimizer.iterations) == 100
    assert not all(np.array_equal(w.numpy(), s) for w, s in zip(model.trainable_weights,
                                                                start))
    frame_z = result.to_frame()
    assert frame_z.index.name == "source" and frame_z.columns.name == "target"
    assert frame_z.loc["y0", "y1"] == result.matrix[0, 1]
    path = result.plot(tmp_path / "affinity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A DataFrame is batched here; `every` measures steps 0 and 3 of 6 (the
    # same model: its training step is traced once for the whole test).
    again = task_affinity(model, frame.iloc[:512], steps=6, every=3, batch_size=128,
                          seed=0)
    assert (again.num_steps, again.num_measured) == (6, 2)
    assert int(model.optimizer.iterations) == 106
    assert np.isfinite(again.matrix).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_correlated_pair_has_the_higher_affinity_longer(correlated, seed):
    frame, schema = correlated
    model = _shared_bottom(schema, seed=seed)
    result = task_affinity(model, frame, steps=300, learning_rate=0.01, batch_size=128,
                           seed=seed)
    z = result.matrix
    # each direction of the pair above every cross-pair direction
    assert min(z[0, 1], z[1, 0]) > max(z[0, 2], z[2, 0], z[1, 2], z[2, 1]), z
    pair, cross = _pair_and_cross(result.gradient_cosine)
    assert pair > cross


def test_plot_and_frames_of_a_given_result(tmp_path):
    result = TaskAffinity(matrix=np.array([[0.1, -0.02], [0.03, 0.2]]),
                          task_names=["ctr", "cvr"], gradient_cosine=np.eye(2),
                          stderr=np.zeros((2, 2)), num_steps=1, num_measured=1,
                          learning_rate=0.1, num_shared_parameters=3)
    assert result.to_frame("gradient_cosine").loc["cvr", "cvr"] == 1.0
    with pytest.raises(ValueError, match="to_frame"):
        result.to_frame("loss")
    assert result.plot(tmp_path / "z.png").stat().st_size > 1000


def test_bad_calls_are_refused(correlated):
    frame, correlated_schema = correlated
    uncompiled = mtrec.models.SharedBottom(correlated_schema, bottom_units=[4])
    with pytest.raises(ValueError, match="needs a compiled model"):
        task_affinity(uncompiled, frame, steps=1)
    model = _shared_bottom(correlated_schema, seed=0)
    for steps in (0, 1.5, True):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            task_affinity(model, frame, steps=steps)
    with pytest.raises(ValueError, match="learning_rate must be a number > 0"):
        task_affinity(model, frame, steps=1, learning_rate=-1.0)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        task_affinity(model, {"x00": np.zeros(3)}, steps=1)
    single = mtrec.Schema([mtrec.Numeric("x00")], {"y0": "regression"}).adapt(frame)
    one_task = mtrec.models.SharedBottom(single)
    one_task.compile()
    with pytest.raises(ValueError, match="at least two trained tasks"):
        task_affinity(one_task, frame, steps=1)
