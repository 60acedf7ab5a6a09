"""with_tasks: a trained model grows new tasks (weights copied, freezing, export)."""

import keras
import numpy as np
import pytest

import mtrec
from helpers import SMALL_MODEL_ARGS, assert_saved_model_parity, error_of
from mtrec.models import MODELS
from mtrec.models.task_transfer import apply_freeze, fill_missing_labels

OLD_TASKS = {"click": "binary", "spend": "regression"}
GRADE = mtrec.TaskSpec("grade", "multiclass")
TRANSFERABLE = ["SharedBottom", "OMoE", "MMoE"]


@pytest.fixture(scope="module")
def old_schema(table):
    """The test table's schema without the `grade` task (the task to add)."""
    schema = mtrec.Schema.infer(table, tasks=OLD_TASKS, exclude=["grade"], verbose=False,
                                tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"))
    return schema.adapt(table)


def train(model, table, epochs=1, lr=0.01, **fit):
    model.compile(optimizer=keras.optimizers.Adam(lr))
    model.fit(table, epochs=epochs, batch_size=64, verbose=0, **fit)
    return model


def build(name, schema):
    return MODELS[name](schema, tower_units=[4], batch_norm=True, dropout=0.1,
                        **SMALL_MODEL_ARGS[name])


@pytest.fixture(scope="module")
def fresh(old_schema):
    """`{name: model}`: each transferable model on click+spend, untrained
    (its random weights differ from a new model's just as well)."""
    keras.utils.set_random_seed(0)
    return {name: build(name, old_schema) for name in TRANSFERABLE}


@pytest.fixture(scope="module")
def trained(table, old_schema):
    """`{name: model}`: SharedBottom and MMoE on click+spend, one epoch, with
    batch norm and dropout (both must stay fixed when frozen)."""
    keras.utils.set_random_seed(0)
    return {name: train(build(name, old_schema), table) for name in ("SharedBottom", "MMoE")}


def predict(model, table):
    raw = model.schema.raw_features(table.head(64))
    return {k: np.asarray(v) for k, v in model.predict_on_batch(raw).items()}


def values(variables):
    return [np.array(v) for v in variables]


@pytest.mark.parametrize("name", TRANSFERABLE)
def test_weights_copied_old_predictions_equal(fresh, table, old_schema, name):
    old = fresh[name]
    before = predict(old, table)
    new = old.with_tasks(GRADE, data=table)
    assert type(new) is type(old) and new.task_names == ["click", "spend", "grade"]
    assert old.task_names == ["click", "spend"]         # the trained model is untouched
    # Feature specs and learned statistics are the old schema's, not re-learned.
    assert new.schema.features == old_schema.features
    assert {k: v for k, v in new.schema.stats.items() if k in old_schema.stats} \
        == old_schema.stats
    assert new.schema.num_classes(new.schema.tasks[-1]) == 3
    after = predict(new, table)
    assert after["grade"].shape == (64, 3)
    for task in OLD_TASKS:
        # MMoE's gate einsum over one more gate may round the last bit
        # differently; the other two compute the very same ops.
        tolerance = 1e-6 if name == "MMoE" else 0.0
        np.testing.assert_allclose(after[task], before[task], atol=tolerance, rtol=0)
    if name == "SharedBottom":
        for task in OLD_TASKS:
            np.testing.assert_array_equal(after[task], before[task])


def test_mmoe_gets_a_new_gate_and_keeps_the_old_ones(fresh):
    old = fresh["MMoE"]
    new = old.with_tasks([mtrec.TaskSpec("grade", "multiclass", num_classes=3)])
    kernel = lambda m: next(np.array(v) for v in m.weights if v.path.endswith("gates/kernel"))
    assert kernel(new).shape[0] == 3
    np.testing.assert_array_equal(kernel(new)[:2], kernel(old))
    assert new.gate_structure()[0][1] == ["click", "spend", "grade"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SharedBottom", "MMoE"])
def test_freeze_backbone_keeps_old_outputs_after_fit(trained, table, name):
    new = trained[name].with_tasks(GRADE, data=table, freeze="backbone")
    before = predict(new, table)
    frozen = values(new.embedding.weights + new.backbone.weights)
    train(new, table, epochs=2, lr=0.05)
    after = predict(new, table)
    for task in OLD_TASKS:
        np.testing.assert_array_equal(after[task], before[task])
    assert np.abs(after["grade"] - before["grade"]).max() > 1e-3
    changed = [not np.array_equal(a, b)
               for a, b in zip(frozen, values(new.embedding.weights + new.backbone.weights))]
    # Only MMoE's gates (the new task's row) may move.
    assert sum(changed) == (2 if name == "MMoE" else 0)


@pytest.mark.slow
def test_freeze_embeddings_fixes_tables_but_trains_the_backbone(trained, table):
    new = trained["MMoE"].with_tasks(GRADE, data=table, freeze="embeddings")
    tables, backbone = values(new.embedding.weights), values(new.backbone.weights)
    before = predict(new, table)
    train(new, table, lr=0.05)
    for a, b in zip(tables, values(new.embedding.weights)):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(backbone, values(new.backbone.weights))
               if a.ndim > 1)
    assert np.abs(predict(new, table)["click"] - before["click"]).max() > 0


@pytest.mark.slow
def test_freeze_none_trains_everything(trained, table):
    new = trained["SharedBottom"].with_tasks(GRADE, data=table, freeze="none")
    assert len(new.trainable_weights) == len(
        [v for v in new.weights if "moving_" not in v.path])
    tables = values(new.embedding.weights)
    train(new, table, lr=0.05)
    assert any(not np.array_equal(a, b) for a, b in zip(tables, values(new.embedding.weights)))


@pytest.mark.slow
def test_train_tasks_trains_the_new_task_without_old_labels(trained, table):
    new = trained["MMoE"].with_tasks(GRADE, data=table, freeze="none", train_tasks=["grade"])
    assert new.untrained_tasks == ("click", "spend")
    only_grade = fill_missing_labels(new, table.drop(columns=["click", "spend"]))
    assert only_grade["click"].isna().all()
    data = mtrec.data.from_pandas(only_grade, new.schema, batch_size=64, shuffle=True, seed=0)
    old_towers = values(new.towers.towers[0].weights + new.towers.heads[1].weights)
    new.compile(optimizer=keras.optimizers.Adam(0.01))
    logs = new.fit(data, epochs=1, verbose=0).history
    # One loss (grade's): Keras logs it as "loss" only.
    assert np.isfinite(logs["loss"][0]) and "click_loss" not in logs
    assert np.isnan(logs["click_auc"][0])       # no click label to measure
    for a, b in zip(old_towers, values(new.towers.towers[0].weights
                                       + new.towers.heads[1].weights)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["SingleTask", "CGC", "PLE", "CrossStitch", "DSelectK"])
def test_refused_models_name_themselves_and_what_works(old_schema, name):
    model = MODELS[name](old_schema, tower_units=[4], **SMALL_MODEL_ARGS[name])
    message = error_of(lambda: model.with_tasks(GRADE))
    assert f"cannot add tasks to a {name}" in message
    assert "Supported: SharedBottom, OMoE, MMoE" in message


def test_bad_arguments_are_refused(fresh, table):
    model = fresh["SharedBottom"]
    assert "freeze must be one of ['backbone', 'embeddings', 'none'], got 'towers'" in \
        error_of(lambda: model.with_tasks(GRADE, data=table, freeze="towers"))
    assert "already in the model" in error_of(lambda: model.with_tasks({"click": "binary"}))
    assert "pass data=" in error_of(lambda: model.with_tasks(GRADE))
    assert "unknown: ['nope']" in error_of(
        lambda: model.with_tasks(GRADE, data=table, train_tasks=["nope"]))
    # The new task's labels are checked by Schema.adapt.
    empty = table.assign(grade=np.nan)
    assert "no label" in error_of(lambda: model.with_tasks(GRADE, data=empty))


@pytest.mark.slow
def test_saved_model_serves_old_and_new_tasks(trained, table, tmp_path):
    new = trained["MMoE"].with_tasks(GRADE, data=table)
    raw = new.schema.raw_features(table.head(16))
    assert_saved_model_parity(new, raw, tmp_path)


@pytest.mark.slow
def test_keras_round_trip(trained, table, tmp_path):
    new = train(trained["MMoE"].with_tasks(GRADE, data=table), table)
    path = tmp_path / "transferred.keras"
    new.save(path)
    again = keras.saving.load_model(path)
    assert type(again) is type(new) and again.task_names == new.task_names
    for task, value in predict(new, table).items():
        np.testing.assert_allclose(predict(again, table)[task], value, atol=1e-6, rtol=0)
    # A reloaded model trains everything until frozen again.
    assert len(again.trainable_weights) > len(new.trainable_weights)
    apply_freeze(again, "backbone", ["click", "spend"])
    assert [v.path for v in again.trainable_weights] == [v.path for v in new.trainable_weights]
