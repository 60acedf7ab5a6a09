"""SharedPrivate: the adversarial and orthogonality losses in model.losses, the
discriminator's accuracy in the fit history and on given data, round trips,
export, run configs, and the adversary keeping task identity out of the shared
views."""

import json

import keras
import numpy as np
import pytest

import mtrec
from helpers import assert_saved_model_parity, tiny_run_config
from mtrec.experiments.config import ConfigError, parse_config

ARGS = dict(shared_units=[8], private_units=[4], tower_units=[4], discriminator_units=[8],
            adversarial_weight=0.3, orthogonality_weight=0.05)


@pytest.fixture(scope="module")
def fitted(table, schema):
    """A SharedPrivate fitted 1 epoch with validation, and its history."""
    keras.utils.set_random_seed(0)
    model = mtrec.models.SharedPrivate(schema, **ARGS)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(mtrec.data.from_pandas(table, schema, batch_size=64),
                        validation_data=table.tail(100), epochs=1, verbose=0)
    return model, history.history


def test_discriminator_accuracy_is_in_the_history(fitted, table, schema):
    model, history = fitted
    train, val = (history["task_discriminator_accuracy"],
                  history["val_task_discriminator_accuracy"])
    assert len(train) == len(val) == 1
    assert 0.0 <= train[0] <= 1.0
    # validation: the accuracy of the final weights on the validation rows
    assert val[0] == pytest.approx(model.discriminator_accuracy(table.tail(100)), abs=1e-6)
    # the logged loss holds the discriminator's cross-entropy (about log 3 at
    # chance) and the penalty on top of the task losses
    task_losses = sum(history[f"{t}_loss"][0] for t in schema.task_names)
    assert history["loss"][0] > task_losses + 0.5


def test_each_batch_is_embedded_once(table, schema, monkeypatch):
    """Eagerly, fit with validation embeds each batch once and computes
    its shared views once, and the validation accuracy is still logged
    (from the same views)."""
    keras.utils.set_random_seed(0)
    model = mtrec.models.SharedPrivate(schema, **ARGS)
    model.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
    calls = {"embedding": 0, "views": 0}

    def count(owner, attribute, key):
        function = getattr(owner, attribute)

        def counted(*args, **kwargs):
            calls[key] += 1
            return function(*args, **kwargs)
        monkeypatch.setattr(owner, attribute, counted)

    count(model.embedding, "call", "embedding")
    count(model.backbone, "shared_views", "views")
    train = mtrec.data.from_pandas(table, schema, batch_size=128)
    validation = mtrec.data.from_pandas(table.tail(100), schema, batch_size=50)
    history = model.fit(train, validation_data=validation, epochs=1, verbose=0).history
    batches = len(list(train)) + 2
    assert calls == {"embedding": batches, "views": batches}
    assert 0.0 <= history["val_task_discriminator_accuracy"][0] <= 1.0
    assert history["val_task_discriminator_accuracy"][0] == pytest.approx(
        model.discriminator_accuracy(table.tail(100)), abs=1e-6)


def test_losses_are_model_losses_in_training_only(fitted, table, schema):
    model, _ = fitted
    raw = schema.raw_features(table.head(32))
    model(raw, training=False)
    assert model.losses == []
    model(raw, training=True)
    adversarial, orthogonality = (float(v) for v in model.losses)
    # at most log 3 + something: a cross-entropy; the penalty is positive
    assert adversarial > 0 and orthogonality > 0
    assert float(model._additional_loss()) == pytest.approx(adversarial + orthogonality,
                                                            rel=1e-6)


def test_discriminator_accuracy_takes_frames_dicts_and_datasets(fitted, table, schema):
    model, _ = fitted
    rows = table.head(100)
    hits = np.asarray(model.backbone.discriminator_hits(
        model.embed(model.encode(schema.raw_features(rows)))))
    assert model.discriminator_accuracy(rows) == pytest.approx(hits.mean())
    assert model.discriminator_accuracy(schema.raw_features(rows)) == pytest.approx(
        hits.mean())
    batches = mtrec.data.from_pandas(rows, schema, batch_size=32)
    assert model.discriminator_accuracy(batches) == pytest.approx(hits.mean())
    per_task = model.discriminator_accuracy(rows, per_task=True)
    assert list(per_task) == schema.task_names
    np.testing.assert_allclose(list(per_task.values()), hits.mean(axis=0))
    with pytest.raises(ValueError, match="no examples"):
        model.discriminator_accuracy([])


def test_config_and_keras_file_round_trips(fitted, table, schema, tmp_path):
    model, _ = fitted
    config = model.get_config()
    json.dumps(config)
    again = mtrec.models.SharedPrivate.from_config(config)
    assert again.get_config() == config
    assert (again.adversarial_weight, again.orthogonality_weight) == (0.3, 0.05)
    assert again.backbone.reversal.scale == 0.3
    path = tmp_path / "shared_private.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is mtrec.models.SharedPrivate
    raw = schema.raw_features(table.head(32))
    expected, actual = model.predict_on_batch(raw), loaded.predict_on_batch(raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])
    # the discriminator is saved too
    assert loaded.discriminator_accuracy(table) == model.discriminator_accuracy(table)


@pytest.mark.slow  # exports and serves in a fresh process (~10 s)
def test_saved_model_parity(fitted, table, schema, tmp_path):
    model, _ = fitted
    assert_saved_model_parity(model, schema.raw_features(table.head(8)), tmp_path)


# 5-10 s each
@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["uncertainty", "gradnorm", "pcgrad"])
def test_trains_with_other_weightings_and_label_masks(masked, schema, weighting):
    keras.utils.set_random_seed(0)
    model = mtrec.models.SharedPrivate(schema, **ARGS)
    before = np.asarray(model.backbone.task_views).copy()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss_weighting=weighting)
    history = model.fit(mtrec.data.from_pandas(masked, schema, batch_size=100),
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert 0.0 <= history.history["task_discriminator_accuracy"][0] <= 1.0
    assert not np.allclose(np.asarray(model.backbone.task_views), before)


def run_config(**args):
    config = tiny_run_config()
    config["model"] = {"name": "SharedPrivate", "args": args}
    return config


def test_run_config_builds_it(schema):
    config = parse_config(run_config(shared_units=[8], private_units=[4],
                                     adversarial_weight=0.1))
    model = mtrec.models.ALL_MODELS[config.model.name](schema, **config.model.args)
    assert isinstance(model, mtrec.models.SharedPrivate) and model.adversarial_weight == 0.1
    with pytest.raises(ConfigError) as caught:
        parse_config(run_config(private_units=[], expert_units=[4]))
    problems = " ".join(caught.value.problems)
    assert "model.args.private_units" in problems and "expert_units" in problems


def test_modality_experts_is_refused(schema):
    with pytest.raises(ValueError, match="supports fusion in \\['concat', 'gated'\\]"):
        mtrec.models.SharedPrivate(schema, fusion="modality_experts")
    assert mtrec.models.SharedPrivate(schema, fusion="gated").fusion == "gated"


# ~20 s: two 6-epoch fits. The min-max game oscillates (the in-training accuracy
# swings around chance), so the test compares the final discriminators on the
# data: measured over seeds 0-3 the adversary ended closer to chance every time
# (seed 0: 0.31 against 0.79 without it; chance 1/3; seed 3, the closest: 0.59
# against 0.90).
@pytest.mark.slow
def test_the_adversary_keeps_the_discriminator_near_chance(table, schema):
    def discriminator_accuracy(adversarial_weight):
        keras.utils.set_random_seed(0)
        model = mtrec.models.SharedPrivate(
            schema, shared_units=[8], private_units=[4], tower_units=[4],
            discriminator_units=[8], adversarial_weight=adversarial_weight)
        model.compile(optimizer=keras.optimizers.Adam(0.02))
        model.fit(mtrec.data.from_pandas(table, schema, batch_size=50, shuffle=True, seed=0),
                  epochs=6, verbose=0)
        return model.discriminator_accuracy(table)

    chance = 1 / len(schema.task_names)
    plain, adversarial = discriminator_accuracy(0.0), discriminator_accuracy(1.0)
    # without the adversary the tasks' views drift apart and are told apart
    assert plain > chance + 0.3
    assert abs(adversarial - chance) < abs(plain - chance) - 0.2
