"""mtrec: multi-task recommendation models on Keras 3 / TensorFlow."""

__version__ = "0.1.0"

from mtrec import data, diagnostics, evaluation, export, layers, models, training  # noqa: E402
from mtrec import config, runner  # noqa: E402
from mtrec.config import load_config  # noqa: E402
from mtrec.evaluation import evaluate  # noqa: E402
from mtrec.schema import (  # noqa: E402
    Categorical, MultiHot, Numeric, Schema, TaskSpec, Text, Vector)

__all__ = ["Categorical", "MultiHot", "Numeric", "Schema", "TaskSpec", "Text",
           "Vector", "config", "load_config", "runner", "data", "diagnostics", "evaluate", "evaluation", "export", "layers",
           "models", "training", "__version__"]
