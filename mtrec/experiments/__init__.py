"""The experiment harness behind the CLI: run configs, the runner, run records.

Importing it loads pydantic and yaml; `import mtrec` does not.
"""

from mtrec.experiments import config, runner
from mtrec.experiments.config import ConfigError, RunConfig, load_config, parse_config

__all__ = ["ConfigError", "RunConfig", "config", "load_config", "parse_config", "runner"]
