"""When an mtrec model's step functions are compiled with XLA.

The string and integer lookups of `FeaturePreprocessing` cannot be
compiled by XLA, which is why Keras refuses `jit_compile=True` for any
model holding them ("Model doesn't support jit_compile=True") and why its
`"auto"` never compiles on a CPU-only host. But batches encoded ahead of
training (`mtrec.data.from_pandas`, the streams) never run those lookups:
the step is embedding -> backbone -> towers -> losses -> optimizer, which
XLA compiles, about twice as fast per step on CPU
(`benchmarks/training_throughput.py`). So mtrec decides per step function
and per call, from what the call is fed:

- `jit_compile=False`: never.
- `jit_compile=True`: every step function (train, test, predict) fed
  encoded batches; raw columns are refused with a ValueError, since their
  lookups cannot compile.
- `jit_compile="auto"` (the default): the training step, when it is fed
  encoded batches and runs long enough to repay the compilation (about 2-5 s
  on 2 cores; `AUTO_MIN_TRAIN_STEPS`), eagerly-run and distributed models
  excepted (Keras' own "auto" also leaves those uncompiled). Evaluation and
  prediction run each batch once, mostly in few steps, and stay uncompiled.
"""

import tensorflow as tf

from mtrec.layers.feature_preprocessing import is_encoded
from mtrec.training.distribution import is_distributed

#: Values `MultiTaskModel.compile(jit_compile=...)` takes.
JIT_COMPILE_CHOICES = ("auto", True, False)
#: Fewest training steps (epochs x steps per epoch) for which "auto"
#: compiles: XLA's one-off compilations (2-5 s for MMoE on 2 cores, twice
#: when the last batch is smaller) against ~3-7 ms saved per 1024-row step.
AUTO_MIN_TRAIN_STEPS = 1000
#: The step functions Keras builds.
STEP_FUNCTIONS = ("train", "test", "predict")


def check_jit_compile(jit_compile):
    """`jit_compile` if it is one of `JIT_COMPILE_CHOICES`, else a ValueError."""
    # A bool or exactly "auto" (1 == True, so no membership test on ints).
    if isinstance(jit_compile, bool) or jit_compile == "auto":
        return jit_compile
    raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}.")


def feeds_encoded(x):
    """True when `x` (what fit/evaluate/predict are given) yields encoded
    feature dicts: an encoded dict, or a `tf.data.Dataset` whose elements
    are one or start with one. Anything else (raw columns, generators,
    `keras.utils.PyDataset`) counts as raw: it may run the lookups."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        features = spec[0] if isinstance(spec, tuple) else spec
        return is_encoded(features)
    return is_encoded(x)


def dataset_steps(x, batch_size=None):
    """Batches per epoch of `x`, or None when unknown (a stream, a generator)."""
    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality >= 0 else None
    if isinstance(x, dict) and x:
        rows = len(next(iter(x.values())))
        return -(-rows // (batch_size or 32))
    return None


def layers_refusing_jit(model):
    """Names of the model's layers that say XLA cannot compile them, the
    preprocessing (never run on encoded batches) left out."""
    preprocessing = getattr(model, "preprocessing", None)
    skipped = set(map(id, preprocessing._flatten_layers())) if preprocessing else set()
    return [layer.name for layer in model._flatten_layers(include_self=False)
            if id(layer) not in skipped and not layer.supports_jit]


def plan_train(requested, model, x, validation=None, epochs=1, steps_per_epoch=None,
               batch_size=None):
    """Whether `fit` compiles its train (and validation) step.

    Args:
        requested: the `jit_compile` given to compile.
        model: the `MultiTaskModel`.
        x: the training input given to `fit`.
        validation: the validation input (`validation_data`'s features or
            dataset), or None.
        epochs, steps_per_epoch, batch_size: `fit`'s arguments.

    Returns:
        dict `{"train": bool, "test": bool}`.
    """
    if requested is False or model.run_eagerly:
        return {"train": False, "test": False}
    encoded = feeds_encoded(x)
    if requested is True:
        refuse_raw(model, x, "fit")
        if validation is not None:
            refuse_raw(model, validation, "fit(validation_data=...)")
        return {"train": True, "test": validation is not None}
    steps = steps_per_epoch or dataset_steps(x, batch_size)
    # A stream of unknown length is read from files: long enough to repay.
    long_enough = steps is None or steps * max(int(epochs), 1) >= AUTO_MIN_TRAIN_STEPS
    train = (encoded and long_enough and not is_distributed(model)
             and not layers_refusing_jit(model))
    # Validation runs each batch once per epoch: uncompiled under "auto".
    return {"train": bool(train), "test": False}


def plan_inference(requested, model, x, function):
    """Whether `evaluate` ("test") or `predict` ("predict") compiles its step."""
    if requested is not True or model.run_eagerly:
        return False
    refuse_raw(model, x, "evaluate" if function == "test" else function)
    return True


def refuse_raw(model, x, caller):
    """ValueError when `jit_compile=True` meets input that may run lookups."""
    if not feeds_encoded(x):
        raise ValueError(
            f"{type(model).__name__} was compiled with jit_compile=True, but {caller} "
            f"was given raw feature columns ({_describe(x)}): their string and id "
            f"lookups cannot be compiled by XLA. Feed encoded batches "
            f"(mtrec.data.from_pandas, from_csv, from_parquet), or compile with "
            f"jit_compile='auto' (XLA only where the input allows it) or False.")
    refusing = layers_refusing_jit(model)
    if refusing:
        raise ValueError(
            f"{type(model).__name__} was compiled with jit_compile=True, but its layers "
            f"{refusing} set supports_jit=False; compile with jit_compile='auto' or False.")


def _describe(x):
    if isinstance(x, tf.data.Dataset):
        return "a tf.data.Dataset of raw columns"
    if isinstance(x, dict):
        return f"columns {sorted(x)[:5]}{'...' if len(x) > 5 else ''}"
    return type(x).__name__
