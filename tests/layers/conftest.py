"""The shared layer-test harness: one test of a layer's contract, as Keras'
`run_layer_test`, given to every test in tests/layers as the fixture
`run_layer_test` (with `tmp_path` filled in).

`run_layer_test` constructs the layer, calls it, checks the output shapes
and the expected numbers of trainable and non-trainable weights, the
`get_config`/`from_config` round trip, that its registered name resolves
to the class, and a `.keras` round trip inside a tiny functional model
(same outputs after reloading).
"""

import functools

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec


def _symbolic_inputs(data):
    """`keras.Input`s shaped like `data` (an array, list or dict of arrays)."""
    if isinstance(data, dict):
        return {k: _symbolic_inputs(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_symbolic_inputs(v) for v in data]
    data = np.asarray(data)
    dtype = "string" if data.dtype.kind in "OUS" else str(data.dtype)
    return keras.Input(shape=data.shape[1:], dtype=dtype)


def _shapes(outputs):
    return [tuple(np.shape(o)) for o in keras.tree.flatten(outputs)]


def _run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape,
                   expected_num_trainable_weights, expected_num_non_trainable_weights=0,
                   call_kwargs=None, tmp_path=None, model_round_trip=True):
    """Checks `layer_cls(**init_kwargs)` on `input_data`; returns the layer.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_data: array, list of arrays, or dict of arrays: the first
            positional call argument (or, for a tuple, all of them).
        expected_output_shape: tuple, or list of tuples for a layer that
            returns several tensors (flattened in `keras.tree` order).
        expected_num_trainable_weights: int.
        expected_num_non_trainable_weights: int.
        call_kwargs: dict of further call arguments.
        tmp_path: folder for the `.keras` file (pytest's `tmp_path`).
        model_round_trip: bool. Whether to run the `.keras` round trip.
    """
    call_kwargs = dict(call_kwargs or {})
    args = input_data if isinstance(input_data, tuple) else (input_data,)

    layer = layer_cls(**init_kwargs)
    outputs = layer(*args, **call_kwargs)
    expected = (expected_output_shape if isinstance(expected_output_shape, list)
                else [expected_output_shape])
    assert _shapes(outputs) == [tuple(s) for s in expected], (
        f"{layer_cls.__name__} output shapes {_shapes(outputs)}, expected {expected}")
    assert len(layer.trainable_weights) == expected_num_trainable_weights, (
        f"{layer_cls.__name__} has {len(layer.trainable_weights)} trainable weights, "
        f"expected {expected_num_trainable_weights}")
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, (
        f"{layer_cls.__name__} has {len(layer.non_trainable_weights)} non-trainable "
        f"weights, expected {expected_num_non_trainable_weights}")

    # config round trip: same class, same config
    config = layer.get_config()
    again = layer_cls.from_config(config)
    assert type(again) is layer_cls
    assert again.get_config() == config

    # registered under mtrec's package, resolvable by that name
    name = keras.saving.get_registered_name(layer_cls)
    assert name.startswith("mtrec"), f"{layer_cls.__name__} is not registered: {name}"
    assert keras.saving.get_registered_object(name) is layer_cls

    if model_round_trip:
        assert tmp_path is not None, "pass tmp_path for the .keras round trip"
        inputs = [_symbolic_inputs(a) for a in args]
        symbolic = layer_cls(**init_kwargs)(*inputs, **call_kwargs)
        model = keras.Model(inputs, keras.tree.flatten(symbolic))
        path = tmp_path / f"{layer_cls.__name__}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        for a, b in zip(keras.tree.flatten(model.predict_on_batch(list(args))),
                        keras.tree.flatten(loaded.predict_on_batch(list(args)))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    return layer


@pytest.fixture
def run_layer_test(tmp_path):
    """`_run_layer_test` writing its `.keras` file under `tmp_path`."""
    return functools.partial(_run_layer_test, tmp_path=tmp_path)


@pytest.fixture
def groups():
    """Three modality groups `(batch=6, dim_g)`: tabular 5, text 3, image 2."""
    rng = np.random.default_rng(0)
    return [rng.normal(size=(6, d)).astype("float32") for d in (5, 3, 2)]


@pytest.fixture
def modalities():
    return ["tabular", "text", "image"]


@pytest.fixture(scope="module")
def tiny():
    """Four rows with one feature of every kind, and the adapted schema."""
    df = pd.DataFrame({
        "c": ["x", "y", "x", None],
        "n": np.array([1.0, 3.0, np.nan, 2.0], "float32"),
        "m": ["a|b", "b", "", "a|b|c"],
        "t": ["Good fit!", "bad", "", "good GOOD"],
        "v": [np.array([1.0, 2.0]), np.array([3.0, 4.0]), None, np.array([0.0, 1.0])],
        "y": [0, 1, 1, 0],
    })
    schema = mtrec.Schema(
        [mtrec.Categorical("c", embedding_dim=2), mtrec.Numeric("n"),
         mtrec.MultiHot("m", embedding_dim=3), mtrec.Text("t", embedding_dim=2),
         mtrec.Vector("v", projection_dim=2)],
        {"y": "binary"}).adapt(df)
    return df, schema
