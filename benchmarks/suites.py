"""Benchmark suites: `benchmarks/suites/<suite>.yaml`, read and checked.

A suite names a folder of run configs (`benchmarks/configs/<configs>/`,
one YAML per dataset and model) and says how to run them:

```yaml
description: UCI Census-Income (KDD), group 1: income > 50K, never married
configs: census_income          # folder under benchmarks/configs/
rows: model                     # a record row is a model class (or: config)
seeds: [1, 2, 3, 4, 5]
overrides: [training.epochs=10] # applied to every config
tune: {training.learning_rate: [0.001, 0.002, 0.005]}   # chosen on validation
# tuned_from: census_g1         # or: reuse another suite's choice
# sweep: {correlation: [0.5, 1.0]}   # one variant per value (dataset.args)
label_correlation: true         # record the labels' Pearson correlation
baseline: baselines/census_g1.yaml
baselines: [hgb]                # non-network rows (default [hgb]; [] for none)
ablations:                      # serve the test split again without some inputs
  text_removed: {blank: [title, review, review_vector], columns: [recommended:auc]}
report: {section: census, make: bench, order: 1}
smoke:                          # what `run.py --smoke` runs instead
  overrides: [training.epochs=1, dataset.args.max_rows=3000]
  configs: [mmoe, ple]          # config file stems (default: all)
  tune: {training.learning_rate: [0.002, 0.005]}
  baseline: baselines/smoke/census_g1.yaml
```

Unknown keys are rejected, naming the file, the key and the closest
known key. Paths (`baseline`) are relative to `benchmarks/`.

`baselines` names rows that are not networks, run on the same data after
the configs: `hgb` is one gradient-boosted-tree model per task
(`benchmarks/gbdt_baseline.py`; under `--smoke` with a few trees only).
Every suite has it unless its file says `baselines: []`.

`ablations` asks what a served model loses when requests lack some inputs
(`benchmarks/ablations.py`): after each run trains, its SavedModel is
exported into the run folder and scores the test split through its
`serving_default` signature as is (the record's `metrics.test_served`) and
once per ablation with the `blank` columns sent as missing (`""` for
strings, NaN for numbers and vectors: `metrics.test_<name>`). The report
sets them side by side (`columns`, default the report's), with the share
of each row's gain over its model's row without those inputs that is kept.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from mtrec.utils.suggestions import did_you_mean

HERE = Path(__file__).resolve().parent
SUITES_DIR = HERE / "suites"
CONFIGS_DIR = HERE / "configs"
ROW_KINDS = ("model", "config")
BASELINE_KINDS = ("hgb",)
SECTIONS = ("census", "synthetic", "table")
#: The record split of the served test metrics with every input present.
SERVED_SPLIT = "test_served"


class SuiteError(ValueError):
    """A suite file that cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Report:
    """How `benchmarks/report.py` presents a suite.

    Attributes:
        section: `"census"` (paper comparison), `"synthetic"` (correlation
            sweep) or `"table"` (mean ± std of `columns` per row).
        make: the Make target that runs the suite (`bench`, `bench-text`, ...);
            the report's run overview lists the `bench` suites.
        order: int. Position of the suite's section in RESULTS.md.
        title: str. Section title (table sections).
        notes: str. What the numbers are (table sections).
        columns: list of `"task:metric"` (table sections).
    """

    section: str = "table"
    make: str = "bench"
    order: int = 100
    title: str = ""
    notes: str = ""
    columns: tuple = ()


@dataclasses.dataclass(frozen=True)
class Smoke:
    """What `run.py --smoke` changes: overrides added to the suite's, a
    subset of configs (file stems; empty: all), a smaller grid or sweep,
    its own baseline (wide tolerances: it catches a broken pipeline)."""

    overrides: tuple = ()
    configs: tuple = ()
    tune: dict | None = None
    sweep: dict | None = None
    baseline: str | None = None


@dataclasses.dataclass(frozen=True)
class Ablation:
    """The test split served again with `blank` columns missing.

    Attributes:
        name: str. The record split is `test_<name>`.
        blank: tuple of column names sent as missing (those a run's model
            does not take are left out: its numbers repeat the served ones).
        columns: tuple of `"task:metric"` in the report (empty: the
            report's columns).
    """

    name: str
    blank: tuple = ()
    columns: tuple = ()

    @property
    def split(self):
        return f"test_{self.name}"


@dataclasses.dataclass(frozen=True)
class Suite:
    """One suite file, checked. Attributes are the file's keys."""

    name: str
    description: str
    configs: str
    rows: str = "model"
    seeds: tuple = (1,)
    overrides: tuple = ()
    tune: dict | None = None
    tuned_from: str | None = None
    sweep: dict | None = None
    label_correlation: bool = False
    baseline: str | None = None
    baselines: tuple = ("hgb",)
    ablations: tuple = ()
    report: Report = Report()
    smoke: Smoke | None = None

    @property
    def config_dir(self):
        return CONFIGS_DIR / self.configs

    def config_files(self):
        """Sorted config files of the suite (at least one)."""
        files = sorted(self.config_dir.glob("*.yaml"))
        if not files:
            raise SuiteError(f"Suite '{self.name}' has no configs in {self.config_dir}.")
        return files

    def baseline_path(self, smoke=False):
        """Path of the baseline file (None when the suite has none)."""
        relative = (self.smoke.baseline if self.smoke else None) if smoke else self.baseline
        return None if relative is None else HERE / relative

    def tuning_grid(self, smoke=False):
        """`(parameter, values)` tuned on validation, or None."""
        grid = (self.smoke.tune if smoke and self.smoke and self.smoke.tune
                else self.tune)
        return _single(grid)

    def sweep_values(self, smoke=False):
        """`(dataset argument, values)` swept, or None."""
        sweep = (self.smoke.sweep if smoke and self.smoke and self.smoke.sweep
                 else self.sweep)
        return _single(sweep)

    def base_overrides(self, smoke=False):
        """Overrides every run of the suite gets."""
        return list(self.overrides) + (list(self.smoke.overrides)
                                       if smoke and self.smoke else [])


def _single(mapping):
    if not mapping:
        return None
    (key, values), = mapping.items()
    return key, list(values)


def suite_names(folder=None):
    """Names of the suite files, in report order."""
    folder = Path(folder) if folder is not None else SUITES_DIR
    suites = [load_suite(p.stem, folder) for p in sorted(folder.glob("*.yaml"))]
    return [s.name for s in sorted(suites, key=lambda s: (s.report.order, s.name))]


def load_suite(name, folder=None):
    """The checked `Suite` of `benchmarks/suites/<name>.yaml`.

    Raises:
        SuiteError: unknown suite, unknown or missing keys, wrong types.
    """
    folder = Path(folder) if folder is not None else SUITES_DIR
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SuiteError(f"Unknown suite '{name}'{did_you_mean(name, known)}; suites "
                         f"(files in {folder}): {known}.")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected a mapping of keys, got {type(data).__name__}.")
    return parse_suite(name, data, where=str(path))


def parse_suite(name, data, where="<suite>"):
    """A `Suite` from the mapping of a suite file (`where` names it in errors)."""
    fields = _check_keys(data, Suite, where, skip=("name",))
    for key in ("description", "configs"):
        if key not in data:
            raise SuiteError(f"{where}: missing key '{key}'.")
    fields["name"] = name
    for key in ("seeds", "overrides", "baselines"):
        if key in fields:
            fields[key] = tuple(_list_of(fields[key], where, key,
                                         int if key == "seeds" else str))
    unknown = [b for b in fields.get("baselines", ()) if b not in BASELINE_KINDS]
    if unknown:
        raise SuiteError(f"{where}: unknown baseline {unknown[0]!r}"
                         f"{did_you_mean(unknown[0], list(BASELINE_KINDS))}; known "
                         f"baselines: {list(BASELINE_KINDS)}.")
    for key in ("tune", "sweep"):
        if key in fields:
            fields[key] = _grid(fields[key], where, key)
    if fields.get("rows", "model") not in ROW_KINDS:
        raise SuiteError(f"{where}: rows must be one of {list(ROW_KINDS)}, got "
                         f"{fields['rows']!r}.")
    if fields.get("tune") and fields.get("tuned_from"):
        raise SuiteError(f"{where}: give either 'tune' (a grid) or 'tuned_from' (a "
                         f"suite whose choice to reuse), not both.")
    if "ablations" in fields:
        fields["ablations"] = _ablations(fields["ablations"], where)
    if "report" in fields:
        report = _check_keys(fields["report"], Report, f"{where}: report")
        if report.get("section", "table") not in SECTIONS:
            raise SuiteError(f"{where}: report.section must be one of {list(SECTIONS)}, "
                             f"got {report['section']!r}.")
        if "columns" in report:
            report["columns"] = _columns(report["columns"], where, "report.columns")
        fields["report"] = Report(**report)
    if "smoke" in fields:
        smoke = _check_keys(fields["smoke"], Smoke, f"{where}: smoke")
        for key in ("overrides", "configs"):
            if key in smoke:
                smoke[key] = tuple(_list_of(smoke[key], where, f"smoke.{key}", str))
        for key in ("tune", "sweep"):
            if key in smoke:
                smoke[key] = _grid(smoke[key], where, f"smoke.{key}")
        fields["smoke"] = Smoke(**smoke)
    suite = Suite(**fields)
    stems = {p.stem for p in suite.config_files()}
    unknown = [c for c in (suite.smoke.configs if suite.smoke else ()) if c not in stems]
    if unknown:
        raise SuiteError(f"{where}: smoke.configs {unknown} are not configs of "
                         f"{suite.config_dir}; it has {sorted(stems)}.")
    return suite


def _columns(value, where, key):
    columns = _list_of(value, where, key, str)
    bad = [c for c in columns if c.count(":") != 1]
    if bad:
        raise SuiteError(f"{where}: {key} are 'task:metric', got {bad}.")
    return tuple(columns)


def _ablations(value, where):
    if not isinstance(value, dict) or not value:
        raise SuiteError(f"{where}: 'ablations' must map a name to {{blank: [columns]}}, "
                         f"e.g. {{text_removed: {{blank: [title, review]}}}}; got {value!r}.")
    out = []
    for name, spec in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name) \
                or name == SERVED_SPLIT.partition("_")[2]:
            raise SuiteError(f"{where}: ablation name {name!r} must be lower-case letters, "
                             f"digits and '_' (it names the record split test_<name>), "
                             f"and not 'served'.")
        fields = _check_keys(spec, Ablation, f"{where}: ablations.{name}", skip=("name",))
        blank = _list_of(fields.get("blank", []), where, f"ablations.{name}.blank", str)
        if not blank:
            raise SuiteError(f"{where}: ablations.{name}.blank names no column; list the "
                             f"input columns a request lacks, e.g. [title, review].")
        columns = _columns(fields.get("columns", []), where, f"ablations.{name}.columns")
        out.append(Ablation(name, tuple(blank), columns))
    return tuple(out)


def _check_keys(data, cls, where, skip=()):
    if not isinstance(data, dict):
        raise SuiteError(f"{where}: expected a mapping, got {type(data).__name__}.")
    known = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    unknown = [k for k in data if k not in known]
    if unknown:
        key = unknown[0]
        raise SuiteError(f"{where}: unknown key '{key}'{did_you_mean(key, known)}; "
                         f"known keys: {known}.")
    return dict(data)


def _list_of(value, where, key, kind):
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise SuiteError(f"{where}: '{key}' must be a list of {kind.__name__}, got "
                         f"{value!r}.")
    return list(value)


def _grid(value, where, key):
    if (not isinstance(value, dict) or len(value) != 1
            or not isinstance(next(iter(value.values())), list)
            or not next(iter(value.values()))):
        raise SuiteError(f"{where}: '{key}' must map one parameter to a non-empty list "
                         f"of values, e.g. {{training.learning_rate: [0.001, 0.002]}}; "
                         f"got {value!r}.")
    return dict(value)
