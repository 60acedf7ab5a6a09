"""mtrec: multi-task recommendation models on Keras 3 / TensorFlow.

`import mtrec` loads the library only (schema, layers, models, training,
evaluation, export, data, analysis); the experiment harness (`mtrec.experiments`:
run configs, the runner) pulls in pydantic and yaml and is imported on
first use, e.g. `mtrec.load_config(...)` or `import mtrec.experiments`.
"""

__version__ = "0.1.0"

from mtrec import analysis, data, evaluation, export, layers, models, training  # noqa: E402
from mtrec.evaluation import evaluate  # noqa: E402
from mtrec.schema import (  # noqa: E402
    Categorical, MultiHot, Numeric, Schema, TaskSpec, Text, Vector)

__all__ = ["Categorical", "MultiHot", "Numeric", "Schema", "TaskSpec", "Text",
           "Vector", "load_config", "analysis", "data", "evaluate", "evaluation", "export",
           "layers", "models", "training", "__version__"]


def __getattr__(name):
    # The harness is loaded lazily so that `import mtrec` stays free of
    # pydantic and yaml (PEP 562).
    if name == "load_config":
        from mtrec.experiments.config import load_config
        return load_config
    if name == "experiments":
        import mtrec.experiments
        return mtrec.experiments
    raise AttributeError(f"module 'mtrec' has no attribute {name!r}")
