"""Hyperparameter search over run configs with Optuna (`mtrec tune`).

`space` reads and validates a config's `tune` section; `study` runs the
Optuna study, one `mtrec train` per trial judged on the validation split;
`pruning` is the Keras callback that reports each epoch to the trial.
Importing this package loads Optuna and TensorFlow.
"""

from mtrec.tuning.space import Parameter, TuneSpec, load_tune_config, parse_tune
from mtrec.tuning.study import TuneResult, default_tune_dir, tune

__all__ = ["Parameter", "TuneResult", "TuneSpec", "default_tune_dir", "load_tune_config",
           "parse_tune", "tune"]
