"""steps_per_execution="auto": training runs several batches per call,
evaluation and prediction one; the same weights and metrics as one batch per
call; fewer steps per call when a callback watches each batch or a
checkpoint interval or a repeated stream needs a divisor."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mtrec
from helpers import error_of
from mtrec.training import steps_per_execution as steps_lib
from mtrec.training.checkpoints import TrainingCheckpoint


def small_model(schema, **compile_args):
    keras.utils.set_random_seed(3)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01), **compile_args)
    return model


class CallsSeen(keras.callbacks.Callback):
    """Records the model's steps per call at each stage, by epoch hooks only
    (no batch hook, so it does not make "auto" fall back to 1)."""

    def __init__(self):
        super().__init__()
        self.train, self.test = [], []

    def on_train_begin(self, logs=None):
        self.train.append(self.model.steps_per_execution)

    def on_test_begin(self, logs=None):
        self.test.append(self.model.steps_per_execution)


class EveryBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


@pytest.fixture(scope="module")
def batches(table, schema):
    # 15 batches of 20 rows: the 300-row table's encoding, once.
    assert len(table) == 300
    return mtrec.data.from_pandas(table, schema, batch_size=20, shuffle=True, seed=0)


@pytest.fixture(scope="module")
def validation(table, schema):
    return mtrec.data.from_pandas(table.head(90), schema, batch_size=20)


def test_auto_trains_like_one_step_per_call_and_validates_every_batch(
        table, schema, validation):
    def shuffled():   # the same batch order for both models
        return mtrec.data.from_pandas(table, schema, batch_size=20, shuffle=True, seed=0)

    one = small_model(schema, steps_per_execution=1)
    history_one = one.fit(shuffled(), validation_data=validation, epochs=2, verbose=0)
    auto = small_model(schema)
    seen = CallsSeen()
    history_auto = auto.fit(shuffled(), validation_data=validation, epochs=2, verbose=0,
                            callbacks=[seen])
    # 15 steps per epoch, at most 16: the whole epoch in one call; the
    # validation of 5 batches (the last of 10 rows) one batch per call.
    assert seen.train == [15] and seen.test == [1, 1]
    assert auto.steps_per_execution == 1   # restored after fit
    for a, b in zip(one.get_weights(), auto.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in history_one.history.items():
        np.testing.assert_allclose(history_auto.history[key], values, rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    # Validation saw all 90 rows: its loss is evaluate()'s on the same rows.
    evaluated = auto.evaluate(validation, verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["loss"], history_auto.history["val_loss"][-1],
                               rtol=1e-5)
    predictions = auto.predict(validation, verbose=0)
    assert all(len(p) == 90 for p in predictions.values())


def test_a_batch_callback_sees_every_batch(schema, batches):
    model = small_model(schema)
    watcher = EveryBatch()
    model.fit(batches, epochs=1, verbose=0, callbacks=[watcher])
    assert watcher.batches == list(range(15))
    assert steps_lib.watches_each_step(watcher)


def test_explicit_steps_keep_keras_meaning(schema, batches, validation):
    model = small_model(schema, steps_per_execution=5)
    seen, watcher = CallsSeen(), EveryBatch()
    model.fit(batches, validation_data=validation, epochs=1, verbose=0,
              callbacks=[seen, watcher])
    assert seen.train == [5] and seen.test == [5]
    assert watcher.batches == [4, 9, 14]


def test_plan_divides_steps_per_epoch_and_checkpoint_interval(schema, batches, tmp_path):
    model = small_model(schema)
    assert steps_lib.plan_train(model, batches, []) == 15
    # A repeated stream with 195 steps per epoch (Census at 1024): 15.
    stream = batches.repeat()
    assert steps_lib.plan_train(model, stream, [], steps_per_epoch=195) == 15
    # Unknown length without steps_per_epoch: the limit.
    assert steps_lib.plan_train(model, stream, []) == steps_lib.AUTO_LIMIT
    saver = TrainingCheckpoint(tmp_path, every_steps=4)
    assert steps_lib.plan_train(model, stream, [saver], steps_per_epoch=12) == 4
    assert steps_lib.plan_train(model, batches, [saver]) == 4
    # Keras' TensorBoard per epoch does not watch batches; per batch it does.
    per_epoch = keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq="epoch")
    per_batch = keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq=1)
    assert steps_lib.plan_train(model, batches, [per_epoch]) == 15
    assert steps_lib.plan_train(model, batches, [per_batch]) == 1


def test_plan_is_one_when_eager_or_distributed(schema, batches):
    eager = small_model(schema, run_eagerly=True)
    assert steps_lib.plan_train(eager, batches, []) == 1
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        distributed = small_model(schema)
    assert steps_lib.plan_train(distributed, batches, []) == 1


def test_train_on_batch_after_a_multi_step_fit(schema, batches, table):
    model = small_model(schema)
    model.fit(batches, epochs=1, verbose=0)
    x, y = next(iter(batches))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    model.fit(batches, epochs=1, verbose=0)   # and back to 15 per call


def test_saved_model_keeps_the_choice(schema, tmp_path):
    for choice in ("auto", 4):
        model = small_model(schema, steps_per_execution=choice)
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
        assert loaded._requested_steps == choice
        (tmp_path / "m.keras").unlink()


@pytest.mark.parametrize("value", [0, -1, 2.5, "fast", True])
def test_bad_values(schema, value):
    model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
    message = error_of(lambda: model.compile(steps_per_execution=value))
    assert "'auto' or an int >= 1" in message and repr(value) in message


def test_predict_inside_fit_runs_one_batch_per_call_and_gives_training_back(
        schema, batches, validation):
    class PredictsEachEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows, self.after = [], []

        def on_epoch_end(self, epoch, logs=None):
            predictions = self.model.predict(validation, verbose=0)
            self.rows.append(len(next(iter(predictions.values()))))
            self.after.append(self.model.steps_per_execution)

    model = small_model(schema)
    callback = PredictsEachEpoch()
    model.fit(batches, epochs=2, verbose=0, callbacks=[callback])
    assert callback.rows == [90, 90]
    assert callback.after == [15, 15]   # training's 15 per call, restored
    assert model.steps_per_execution == 1
