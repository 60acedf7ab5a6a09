"""The experiment harness behind the CLI: run configs, the runner, run records.

Importing it loads pydantic and yaml; `import mtrec` does not.
"""

from mtrec.experiments import config, record, runner
from mtrec.experiments.config import ConfigError, RunConfig, load_config, parse_config
from mtrec.experiments.runner import RunResult, train

__all__ = ["ConfigError", "RunConfig", "RunResult", "config", "load_config", "parse_config",
           "record", "runner", "train"]
