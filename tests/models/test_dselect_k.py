"""DSelectK: at most k experts per task once trained, under every loss weighting
with label masks; diagnostics, run config, export."""

import keras
import numpy as np
import pytest

import mtrec
from helpers import assert_saved_model_parity, tiny_run_config
from mtrec.experiments.config import ConfigError, parse_config


@pytest.fixture(scope="module")
def sparse(masked, schema):
    """DSelectK, 4 experts, k = 2, trained until its selectors saturate."""
    keras.utils.set_random_seed(0)
    model = mtrec.models.DSelectK(schema, num_experts=4, num_nonzeros=2, expert_units=[8],
                                  tower_units=[4], entropy_weight=0.1)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(mtrec.data.from_pandas(masked, schema, batch_size=30, shuffle=True, seed=0),
              epochs=25, verbose=0)
    return model


def test_static_gates_start_dense_and_equal_over_examples(table, schema):
    model = mtrec.models.DSelectK(schema, num_experts=4, expert_units=[4])
    weights = model.gate_weights(schema.raw_features(table.head(5)))["experts"]
    assert weights.shape == (5, 3, 4) and (weights > 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights, np.broadcast_to(weights[:1], weights.shape))
    assert model.selected_experts() == {t: [f"expert_{i}" for i in range(4)]
                                        for t in schema.task_names}


@pytest.mark.slow
def test_training_selects_at_most_k_experts_per_task(sparse, table, schema):
    report = mtrec.evaluation.gates(sparse, table, collapse_threshold=1.0)
    usage = report.usage.loc["experts"]
    # exact zeros: the smooth-step is 0 or 1 outside [-gamma/2, gamma/2]
    assert ((usage > 0).sum(axis=1) <= 2).all() and ((usage > 0).sum(axis=1) >= 1).all()
    selected = sparse.selected_experts()
    assert set(selected) == set(schema.task_names)
    for task, experts in selected.items():
        assert experts == [e for e in usage.columns if usage.loc[task, e] > 0]
    # the regularisers were part of the trained loss
    z = np.asarray(sparse.backbone.gates.z_logits)
    assert (np.abs(z) >= 0.5).all()


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "gradnorm", "dwa", "pcgrad"])
def test_trains_with_every_weighting_and_label_masks(masked, schema, weighting):
    keras.utils.set_random_seed(0)
    model = mtrec.models.DSelectK(schema, num_experts=3, expert_units=[4], tower_units=[4])
    z = np.asarray(model.backbone.gates.z_logits).copy()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss_weighting=weighting)
    history = model.fit(mtrec.data.from_pandas(masked, schema, batch_size=100),
                        epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(np.asarray(model.backbone.gates.z_logits), z)


def test_the_layer_losses_reach_the_training_loss(table, schema):
    model = mtrec.models.DSelectK(schema, num_experts=3, expert_units=[4],
                                  entropy_weight=0.5)
    model.compile()
    x, y = next(iter(mtrec.data.from_pandas(table.head(32), schema, batch_size=32)))
    pred = model(x, training=True)
    (entropy, reachability) = model.losses
    task_losses = float(np.sum(model.task_losses(y, pred)))
    assert float(model.compute_loss(x, y, pred)) == pytest.approx(
        task_losses + float(entropy) + float(reachability), rel=1e-5)


def test_modality_experts(schema):
    model = mtrec.models.DSelectK(schema, num_experts=2, expert_units=[4],
                                  fusion="modality_experts")
    (_, gates, experts), = model.gate_structure()
    assert gates == schema.task_names and len(experts) == 2 * len(model.backbone.modalities)


def run_config(**args):
    config = tiny_run_config()
    config["model"] = {"name": "DSelectK", "args": args}
    return config


def test_run_config_builds_it(schema):
    config = parse_config(run_config(num_experts=4, num_nonzeros=1, expert_units=[8],
                                     per_example=True, entropy_weight=0.01))
    model = mtrec.models.ALL_MODELS[config.model.name](schema, **config.model.args)
    assert isinstance(model, mtrec.models.DSelectK)
    assert model.per_example and model.backbone.gates.num_nonzeros == 1
    with pytest.raises(ConfigError) as caught:
        parse_config(run_config(num_nonzeros=0, per_example="yes"))
    problems = " ".join(caught.value.problems)
    assert "model.args.num_nonzeros" in problems and "model.args.per_example" in problems


@pytest.mark.slow
def test_saved_model_parity(masked, table, schema, tmp_path):
    keras.utils.set_random_seed(0)
    model = mtrec.models.DSelectK(schema, num_experts=3, expert_units=[8], per_example=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(mtrec.data.from_pandas(masked, schema, batch_size=100), epochs=1, verbose=0)
    assert_saved_model_parity(model, schema.raw_features(table.head(8)), tmp_path)
