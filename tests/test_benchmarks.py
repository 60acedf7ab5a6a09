"""Tests of the benchmark pipeline: suite files (benchmarks/suites.py), the
runner (benchmarks/run.py), records and baselines (benchmarks/records.py)
and the report (benchmarks/report.py).

The smoke suites (`make bench-smoke`: 1 seed, 1 epoch, a few thousand rows,
census with its tuning grid) run here in-process, into tmp_path.
"""

import ast
import copy
import json
import sys
from pathlib import Path

import pytest
import yaml
from helpers import load_module

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name):
    return load_module(name, BENCH / f"{name}.py")


sys.path.insert(0, str(BENCH))
suites = _load("suites")
records = _load("records")
run = _load("run")
report = _load("report")

#: Models that need a scenario feature (not run on census or synthetic).
MULTI_SCENARIO = {"STAR", "PEPNet"}
DATA_SUITES = ["census_g1", "movielens_funnel", "clothing_reviews", "movielens_ratings",
               "clothing_multimodal", "movielens_multimodal"]
needs_bench_data = pytest.mark.needs_data("census-income", "ml-latest-small",
                                          "womens-clothing-reviews")
TEXT_INPUTS = ["title", "review", "review_vector"]
#: The multimodal suites: dataset, its arguments, text inputs (the blanked
#: and the tabular configs' excluded columns), ablation report columns.
MULTIMODAL_SUITES = {
    "clothing_multimodal": ("clothing_reviews", {"seed": 0, "text_vectors": 64}, TEXT_INPUTS,
                            ("recommended:auc", "rating:rmse")),
    "movielens_multimodal": ("movielens_ratings",
                             {"seed": 0, "text_vectors": {"dim": 64,
                                                          "columns": ["title", "tags"]}},
                             ["title", "tags", "title_vector", "tags_vector"],
                             ("like:auc", "like:gauc", "rating:rmse")),
}


@pytest.fixture(autouse=True, scope="module")
def _benchmarks_first_on_path():
    """benchmarks/ first on sys.path while these tests run: `run.main`'s worker
    processes import their parent's module as `run`, and benchmarks/peers/
    (put first by its own run.py when tests/benchmarks/test_peers.py loads it)
    has a run.py too."""
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def _smoke(out, names):
    # Two worker processes, as `make bench-smoke` runs.
    return run.main(["--smoke", "--suite", ",".join(names), "--out-dir", str(out),
                     "--jobs", "2", "--report", "--check-baseline"])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The synthetic smoke suite (no data needed), report, baseline check."""
    out = tmp_path_factory.mktemp("bench-smoke")
    return out, _smoke(out, ["synthetic"])


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    """The smoke suites that read dataset copies: census (with its tuning
    grid), the funnel and the two text suites."""
    out = tmp_path_factory.mktemp("bench-smoke-data")
    return out, _smoke(out, DATA_SUITES)


# --------------------------------------------------------------------------
# Suite files
# --------------------------------------------------------------------------
def test_no_import_cycle_between_runner_and_report():
    def imports(name):
        tree = ast.parse((BENCH / f"{name}.py").read_text())
        return {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import)
                              else [ast.alias(node.module or "")])}
    assert "run" not in imports("report")
    assert "report" not in imports("records") | imports("suites")
    assert "run" not in imports("records") | imports("suites")


def test_every_suite_file_plans_valid_runs():
    from mtrec.experiments.config import load_config

    names = suites.suite_names()
    assert names == ["census_g1", "census_g2", "synthetic", "movielens_funnel",
                     "clothing_reviews", "movielens_ratings", "clothing_scenarios",
                     "clothing_multimodal", "movielens_multimodal"]
    for name in names:
        suite = run.load_suite(name)
        # configs that need modality_losses are checked (or skipped, with the
        # reason) by test_the_multimodal_configs_load
        runs = run.plan(suite, seeds=[1, 2])
        configs = [load_config(ROOT / r["config_path"], r["overrides"]) for r in runs]
        assert runs and all(c.training.seed == r["seed"] for c, r in zip(configs, runs))
        rows = {r["name"] for r in runs}
        if name.startswith("census"):
            # every model but the multi-scenario ones (census has no scenario)
            assert rows == set(run.MODEL_ORDER) - MULTI_SCENARIO
            assert all(c.training.epochs == 10 for c in configs)
        elif name == "synthetic":
            assert rows == {"SharedBottom", "OMoE", "MMoE", "CrossStitch", "DSelectK",
                            "SharedPrivate"}
            # MMoE paper's and PLE paper's correlations
            assert {r["variant"] for r in runs} == {
                f"correlation={p}" for p in (0.2, 0.4, 0.5, 0.75, 0.9, 1.0)}
        else:  # one row per config file
            assert rows == {p.stem for p in suite.config_files()}
        # seeds outermost: an interrupted suite has every model at seed 1
        assert [r["seed"] for r in runs] == sorted(r["seed"] for r in runs)
        assert suite.baseline_path().is_file()
        if suite.smoke is not None:
            assert suite.baseline_path(smoke=True).is_file()
            smoke_runs = run.plan(suite, seeds=[1], smoke=True)
            for r in smoke_runs:
                load_config(ROOT / r["config_path"], r["overrides"])
            if suite.smoke.configs:
                assert {Path(r["config_path"]).stem for r in smoke_runs} == set(
                    suite.smoke.configs)
    grid = run.tuning_plan(run.load_suite("census_g1"), seed=1)
    assert len(grid) == 3 * len(set(run.MODEL_ORDER) - MULTI_SCENARIO)
    assert {r["tune"] for r in grid} == {"training.learning_rate=0.001",
                                         "training.learning_rate=0.002",
                                         "training.learning_rate=0.005"}
    smoke_grid = run.tuning_plan(run.load_suite("census_g1"), seed=1, smoke=True)
    assert len(smoke_grid) == 2 * 2 and all(
        "dataset.args.max_rows=4000" in r["overrides"] for r in smoke_grid)


@pytest.mark.parametrize("suite, stem", [
    (suite, p.stem) for suite in MULTIMODAL_SUITES
    for p in sorted((BENCH / "configs" / suite).glob("*.yaml"))])
def test_the_multimodal_configs_load(suite, stem):
    """Every multimodal config loads, on its suite's data (the text
    vectors on), with its variant's inputs and model arguments."""
    from mtrec.experiments.config import load_config

    dataset, dataset_args, text_inputs, _ = MULTIMODAL_SUITES[suite]
    path = BENCH / "configs" / suite / f"{stem}.yaml"
    config = load_config(path)
    model, _, variant = stem.partition("_")
    assert config.model.name == {"mmoe": "MMoE", "ple": "PLE"}[model]
    assert config.dataset.name == dataset
    assert config.dataset.args == dataset_args
    assert config.output_dir.endswith(f"{suite}/{stem}")
    args = config.model.args
    assert config.schema_.exclude == (text_inputs if variant == "tabular" else [])
    assert args.get("modality_dropout", 0.0) == (0.3 if "dropout" in variant else 0.0)
    kinds = [loss["kind"] for loss in args.get("modality_losses", [])]
    assert kinds == {"text_dropout_reconstruction": ["reconstruction"],
                     "text_dropout_imputed": ["reconstruction"],
                     "text_dropout_alignment": ["alignment"],
                     "text_dropout_both": ["reconstruction", "alignment"]}.get(variant, [])
    assert args.get("impute_missing", []) == (["text"] if variant.endswith("imputed") else [])
    assert args.get("fusion") == "concat"


@pytest.mark.parametrize("name", sorted(MULTIMODAL_SUITES))
def test_the_multimodal_suite_serves_every_run_without_the_text(name):
    _, _, text_inputs, columns = MULTIMODAL_SUITES[name]
    suite = run.load_suite(name)
    assert [(a.name, a.blank, a.columns) for a in suite.ablations] == [
        ("text_removed", tuple(text_inputs), columns)]
    assert suite.report.make == "bench-multimodal" and suite.baselines == ()
    runs = run.plan(suite, seeds=[1, 2, 3])
    assert len(runs) == 14 * 3 and {r["seed"] for r in runs} == {1, 2, 3}
    assert all(r["ablations"] == {"text_removed": text_inputs} for r in runs)
    smoke = run.plan(suite, seeds=[1], smoke=True)
    assert [r["name"] for r in smoke] == ["mmoe_tabular", "mmoe_text_dropout"]
    # a smoke run reads a few thousand rows: the first reviews, or the first users
    row_limit = {"clothing_multimodal": "dataset.args.max_rows=3000",
                 "movielens_multimodal": "dataset.args.max_users=100"}[name]
    assert row_limit in smoke[0]["overrides"]
    assert "training.epochs=2" in smoke[0]["overrides"]
    makefile = (ROOT / "Makefile").read_text()
    assert "bench-multimodal: venv" in makefile
    assert "--suite clothing_multimodal,movielens_multimodal " in makefile


MINIMAL = {"description": "d", "configs": "synthetic"}


@pytest.mark.parametrize("data, message", [
    (dict(MINIMAL, seedz=[1]), "unknown key 'seedz' (did you mean 'seeds'?)"),
    (dict(MINIMAL, report={"colums": ["a:auc"]}),
     "report: unknown key 'colums' (did you mean 'columns'?)"),
    (dict(MINIMAL, smoke={"overides": []}),
     "smoke: unknown key 'overides' (did you mean 'overrides'?)"),
    ({"configs": "synthetic"}, "missing key 'description'"),
    (dict(MINIMAL, seeds=[1, "2"]), "'seeds' must be a list of int"),
    (dict(MINIMAL, rows="models"), "rows must be one of ['model', 'config']"),
    (dict(MINIMAL, tune={"training.learning_rate": [0.1]}, tuned_from="census_g1"),
     "either 'tune'"),
    (dict(MINIMAL, sweep={"correlation": 0.5}), "'sweep' must map one parameter"),
    (dict(MINIMAL, report={"columns": ["auc"]}), "'task:metric', got ['auc']"),
    (dict(MINIMAL, report={"section": "tables"}), "report.section must be one of"),
    (dict(MINIMAL, smoke={"configs": ["nope"]}), "smoke.configs ['nope'] are not"),
    (dict(MINIMAL, ablations=["title"]), "'ablations' must map a name to {blank"),
    (dict(MINIMAL, ablations={"Text-removed": {"blank": ["title"]}}),
     "ablation name 'Text-removed' must be lower-case"),
    (dict(MINIMAL, ablations={"served": {"blank": ["title"]}}), "and not 'served'"),
    (dict(MINIMAL, ablations={"no_text": {"blanks": ["title"]}}),
     "ablations.no_text: unknown key 'blanks' (did you mean 'blank'?)"),
    (dict(MINIMAL, ablations={"no_text": {"blank": []}}), "ablations.no_text.blank names no"),
    (dict(MINIMAL, ablations={"no_text": {"blank": ["t"], "columns": ["auc"]}}),
     "ablations.no_text.columns are 'task:metric'"),
])
def test_bad_suite_files_are_rejected_with_the_reason(tmp_path, data, message):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(suites.SuiteError) as info:
        suites.load_suite("bad", tmp_path)
    assert message in str(info.value)
    assert str(tmp_path / "bad.yaml") in str(info.value)


def test_unknown_suite_names_the_closest(capsys):
    with pytest.raises(SystemExit, match="Unknown suite 'synthetc' \\(did you mean "
                                         "'synthetic'\\?\\)"):
        run.main(["--suite", "synthetc", "--no-run"])


# --------------------------------------------------------------------------
# Tuning
# --------------------------------------------------------------------------
TINY = ["training.epochs=1", "dataset.args.num_samples=1500", "dataset.args.dim=8"]


@pytest.mark.slow  # 40 s: trains the census tuning grid (make test-slow; bench-smoke runs it too)
def test_tuning_picks_on_validation_and_reuses_the_tuning_run(tmp_path):
    """A suite with a grid: every grid value trains at the first seed, the best
    validation score wins per model, the first seed's run is the tuning run,
    the other seeds run at the chosen value; a suite tuned_from it reuses the
    choice; without the source record it stops and says what to run."""
    tune = suites.parse_suite("tiny_tune", {
        "description": "tiny", "configs": "synthetic", "overrides": TINY, "seeds": [1, 2],
        "tune": {"training.learning_rate": [0.0001, 0.01]}})
    tuned = suites.parse_suite("tiny_tuned", {
        "description": "tiny, tuned from tiny_tune", "configs": "synthetic",
        "overrides": TINY, "seeds": [1], "tuned_from": "tiny_tune"})
    with pytest.raises(SystemExit, match="run --suite tiny_tune first"):
        run.run_suite(tuned, out_dir=tmp_path, runs_dir=tmp_path / "runs",
                      models=["SharedBottom"], log=lambda *a: None)
    record = run.run_suite(tune, out_dir=tmp_path, runs_dir=tmp_path / "runs",
                           models=["SharedBottom"], log=lambda *a: None)
    tuning = record["tuning"]
    assert tuning["parameter"] == "training.learning_rate" and len(tuning["runs"]) == 2
    scores = {r["tune"]: run.validation_score(r) for r in tuning["runs"]}
    best = max(scores, key=scores.get)
    assert tuning["chosen"] == {"SharedBottom": best}
    by_seed = {r["seed"]: r for r in record["runs"]}
    assert sorted(by_seed) == [1, 2]
    assert by_seed[1]["reused_from_tuning"] is True
    assert by_seed[1]["metrics"] == next(r for r in tuning["runs"]
                                         if r["tune"] == best)["metrics"]
    assert best in by_seed[2]["overrides"] and not by_seed[2].get("reused_from_tuning")
    assert (tmp_path / "runs" / "tiny_tune" / "tune").is_dir()
    again = run.run_suite(tuned, out_dir=tmp_path, runs_dir=tmp_path / "runs",
                          models=["SharedBottom"], log=lambda *a: None)
    assert again["tuned_from"]["chosen"] == {"SharedBottom": best}
    assert best in again["runs"][0]["overrides"]


def test_choose_takes_the_best_mean_validation_auc():
    def entry(name, tune, aucs):
        return {"name": name, "tune": tune,
                "metrics": {"valid": {f"t{i}": {"auc": a} for i, a in enumerate(aucs)}}}
    runs = [entry("MMoE", "lr=1", [0.90, 0.99]), entry("MMoE", "lr=2", [0.92, 0.98]),
            entry("PLE", "lr=1", [0.80, 0.80]), entry("PLE", "lr=2", [0.80, 0.80])]
    # MMoE: 0.945 vs 0.950; PLE: a tie keeps the first grid value
    assert run.choose(runs) == {"MMoE": "lr=2", "PLE": "lr=1"}


# --------------------------------------------------------------------------
# Smoke runs
# --------------------------------------------------------------------------
RUN_KEYS = ("name", "model", "git", "versions", "seed", "config", "parameters",
            "epochs_run", "train_seconds", "metrics", "history")


def test_smoke_suite_writes_record_report_and_figures(smoke):
    out, status = smoke
    assert status == 0  # the smoke baseline check passed
    record = json.loads((out / "synthetic.json").read_text())
    assert record["smoke"] is True and record["command"].startswith("python benchmarks/run.py")
    assert record["machine"]["cpu_count"] >= 1
    assert set(record["label_correlation"]) == {"correlation=0.5", "correlation=1.0"}
    assert len(record["runs"]) == 6
    for entry in record["runs"]:
        for key in RUN_KEYS:
            assert key in entry, key
        assert entry["seed"] == 1 and entry["config"]["training"]["seed"] == 1
        assert entry["epochs_run"] == 1
        assert set(entry["metrics"]["valid"]) == set(entry["metrics"]["test"]) == {"y1", "y2"}
        assert entry["history"][0]["loss"] > 0
        assert Path(entry["run_dir"], "metrics.json").is_file()  # raw run kept apart
    text = (out / "RESULTS.md").read_text()
    assert "Census-Income group 1" in text and "**Not run**" in text
    assert "synthetic (smoke)" in text and "label Pearson" in text
    for name in ("synthetic_loss_vs_correlation.png", "synthetic_loss_curves.png"):
        assert (out / "figures" / name).stat().st_size > 1000


@needs_bench_data
@pytest.mark.slow  # data smoke suites incl. the two multimodal ones, ~2-3 min (make test-slow)
def test_smoke_of_the_data_suites_tunes_census_and_passes_the_baselines(smoke_data):
    out, status = smoke_data
    assert status == 0  # every smoke baseline check passed
    census = json.loads((out / "census_g1.json").read_text())
    tuning = census["tuning"]
    assert tuning["values"] == [0.002, 0.005] and len(tuning["runs"]) == 4
    assert set(tuning["chosen"]) == {"MMoE", "SharedBottom"}
    assert {r["name"] for r in census["runs"]} == {"MMoE", "SharedBottom"}
    assert all(r["reused_from_tuning"] for r in census["runs"])
    assert census["runs"][0]["dataset"]["rows"] == {"train": 4000, "valid": 1000,
                                                     "test": 1000}
    for suite in DATA_SUITES[1:]:
        record = json.loads((out / f"{suite}.json").read_text())
        smoke = run.load_suite(suite).smoke
        assert sorted(r["name"] for r in record["runs"]) == sorted(smoke.configs)
        for entry in record["runs"]:
            for key in RUN_KEYS:
                assert key in entry, (suite, key)
    text = (out / "RESULTS.md").read_text()
    assert "Derived CTR -> CVR funnel" in text
    assert "| esmm | ESMM | 1 |" in text and "| mmoe_tabular | MMoE | 1 |" in text
    # the multimodal suites: every run served through its SavedModel, as is
    # and without the text; the tabular model takes no text, so nothing changes
    for suite, (_, _, text_inputs, columns) in MULTIMODAL_SUITES.items():
        task = columns[0].split(":")[0]
        served = {r["name"]: r for r in json.loads(
            (out / f"{suite}.json").read_text())["runs"]}
        for name, entry in served.items():
            assert Path(entry["saved_model"], "saved_model.pb").is_file()
            assert abs(entry["metrics"]["test_served"][task]["auc"]
                       - entry["metrics"]["test"][task]["auc"]) < 1e-4
        assert served["mmoe_tabular"]["ablations"]["text_removed"]["blanked"] == []
        assert served["mmoe_tabular"]["metrics"]["test_text_removed"] == \
            served["mmoe_tabular"]["metrics"]["test_served"]
        assert served["mmoe_text_dropout"]["ablations"]["text_removed"]["blanked"] == \
            text_inputs
        assert served["mmoe_text_dropout"]["metrics"]["test_text_removed"] != \
            served["mmoe_text_dropout"]["metrics"]["test_served"]
    assert "### Served through the SavedModel: all inputs vs text removed" in text


@needs_bench_data
@pytest.mark.slow  # shares the data smoke suites' fixture (~2 min)
def test_check_baseline_of_a_table_suite_fails_on_a_doctored_record(smoke_data, tmp_path,
                                                                     capsys):
    out, _ = smoke_data
    record = json.loads((out / "movielens_funnel.json").read_text())
    for entry in record["runs"]:
        if entry["name"] == "esmm":
            entry["metrics"]["test"]["cvr"]["auc"] = 0.5
    (tmp_path / "movielens_funnel.json").write_text(json.dumps(record))
    status = run.main(["--smoke", "--suite", "movielens_funnel", "--out-dir", str(tmp_path),
                       "--no-run", "--check-baseline"])
    assert status != 0
    message = capsys.readouterr().out
    assert "BASELINE FAIL movielens_funnel: esmm / cvr / test auc: 0.5000" in message
    assert "(regression)" in message


def test_check_baseline_fails_on_a_doctored_record(smoke, tmp_path, capsys):
    out, _ = smoke
    record = json.loads((out / "synthetic.json").read_text())
    doctored = copy.deepcopy(record)
    for entry in doctored["runs"]:
        if entry["model"] == "MMoE" and entry["variant"] == "correlation=0.5":
            entry["metrics"]["test"]["y1"]["rmse"] *= 10  # a 100x worse MSE
    (tmp_path / "synthetic.json").write_text(json.dumps(doctored))
    status = run.main(["--smoke", "--suite", "synthetic", "--out-dir", str(tmp_path),
                       "--no-run", "--check-baseline"])
    assert status != 0
    message = capsys.readouterr().out
    assert "BASELINE FAIL synthetic: MMoE@correlation=0.5 / y1 / test mse" in message
    assert "expected" in message and "(regression)" in message
    # the undoctored record passes the same check
    assert run.check_suite("synthetic", out_dir=out, smoke=True) == 0


def test_merge_records_of_parallel_processes(smoke, tmp_path):
    out, _ = smoke
    record = json.loads((out / "synthetic.json").read_text())
    other = copy.deepcopy(record)
    for entry in other["runs"]:
        entry["seed"] = 2
    duplicate = copy.deepcopy(record)  # same keys as `record`: dropped
    paths = []
    for i, r in enumerate((record, other, duplicate)):
        paths.append(tmp_path / f"part{i}.json")
        paths[-1].write_text(json.dumps(r))
    merged = run.merge_records("synthetic", paths, out_dir=tmp_path / "merged")
    assert len(merged["runs"]) == 12 and merged["seeds"] == [1, 2]
    assert merged["parallel_processes"] == 3 and merged["wall_seconds"] >= 0
    assert json.loads((tmp_path / "merged" / "synthetic.json").read_text()) == merged
    with pytest.raises(SystemExit, match="not 'census_g1'"):
        run.merge_records("census_g1", paths[:1], out_dir=tmp_path)


# --------------------------------------------------------------------------
# Records and baselines
# --------------------------------------------------------------------------
def _entry(name, seed, test, model=None):
    return {"name": name, "model": model or name, "variant": None, "seed": seed,
            "parameters": 10, "epochs_run": 1, "train_seconds": 1.0,
            "metrics": {"test": test}}


def test_check_baseline_on_auc_names_row_task_value_and_expected():
    record = {"runs": [_entry("MMoE", s, {"income": {"auc": auc}, "marital": {"auc": 0.99}})
                       for s, auc in ((1, 0.90), (2, 0.91))]}
    baseline = {"expected": {"MMoE": {"income": {"auc": {"mean": 0.94, "tol": 0.01}},
                                      "marital": {"auc": {"mean": 0.99, "tol": 0.01}}}}}
    problems = records.check_baseline(record, baseline)
    assert len(problems) == 1
    assert problems[0].startswith("MMoE / income / test auc: 0.9050")
    assert "expected 0.9400 ± 0.0100 (regression)" in problems[0]
    baseline["expected"]["CGC"] = {"income": {"auc": {"mean": 0.9, "tol": 0.1}}}
    assert any(p.startswith("CGC: no runs") for p in records.check_baseline(record, baseline))


def test_aggregate_groups_config_rows_and_keeps_every_metric():
    record = {"runs": [
        _entry("mmoe_text", 1, {"r": {"rmse": 1.0, "mae": 0.5, "kind": "regression"}}, "MMoE"),
        _entry("mmoe_text", 2, {"r": {"rmse": 3.0, "mae": 1.5, "kind": "regression"}}, "MMoE"),
        _entry("mmoe_tabular", 1, {"r": {"rmse": 2.0, "mae": None}}, "MMoE")]}
    stats = records.aggregate(record)
    assert set(stats) == {("mmoe_text", None), ("mmoe_tabular", None)}
    text = stats[("mmoe_text", None)]
    assert text["n"] == 2 and text["model"] == "MMoE"
    assert text["tasks"]["r"]["mse"]["mean"] == pytest.approx(5.0)  # (1 + 9) / 2
    assert text["tasks"]["r"]["mae"] == pytest.approx(
        {"mean": 1.0, "std": 0.7071068, "min": 0.5, "max": 1.5, "n": 2})
    assert "mae" not in stats[("mmoe_tabular", None)]["tasks"]["r"]
    baseline = records.baseline_from_record(dict(record, suite="s"), note="n")
    # losses: tol = max(3 x std, 0.1 x mean)
    assert baseline["expected"]["mmoe_text"]["r"]["mse"] == {
        "mean": 5.0, "tol": round(3 * 5.656854, 4)}
    assert baseline["expected"]["mmoe_tabular"]["r"]["mse"] == {"mean": 4.0, "tol": 0.4}
    assert records.check_baseline(record, baseline) == []


def test_committed_baselines_name_known_rows_and_tasks():
    for path in sorted((BENCH / "baselines").rglob("*.yaml")):
        baseline = yaml.safe_load(path.read_text())
        suite = run.load_suite(baseline["suite"])
        rows = set(run.MODEL_ORDER) if suite.rows == "model" else {
            p.stem for p in suite.config_files()}
        assert baseline["expected"], path
        for name, tasks in baseline["expected"].items():
            # a model or config, or a baseline's row such as "HGB (per task)"
            assert name.partition("@")[0] in rows or records.is_baseline_row(name), (path, name)
            for task, metrics in tasks.items():
                for metric, want in metrics.items():
                    assert metric in ("auc", "mse", "logloss", "rmse")
                    assert want["tol"] > 0


def test_committed_records_have_the_one_shape_and_pass_their_baselines():
    for name in suites.suite_names():
        record = records.read_record(BENCH / "results" / f"{name}.json")
        assert record["suite"] == name and isinstance(record["runs"], list)
        for entry in record["runs"]:
            assert {"name", "model", "seed", "parameters", "epochs_run",
                    "train_seconds", "metrics", "git"} <= set(entry), name
        assert run.check_suite(name, log=lambda *a: None) == 0, name


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def test_report_says_which_suites_were_not_run(tmp_path):
    path = report.write_report(tmp_path / "empty", tmp_path / "R.md", tmp_path / "fig")
    text = path.read_text()
    assert text.count("**Not run**") == 3
    assert text.count("Not run yet: `make bench-text`") == 2
    assert "Not run yet: `make bench-funnel`" in text
    assert "| census_g1 | 0 | — | — | not run |" in text


def test_report_tables_come_from_the_committed_records(tmp_path):
    path = report.write_report(BENCH / "results", tmp_path / "R.md", tmp_path / "fig")
    text = path.read_text()
    # the funnel table's ESMM row, as the retired suite_report.py wrote it
    assert ("| esmm | ESMM | 3 | 329,810 | 0.8360 ± 0.0007 | 0.7595 ± 0.0024 | "
            "0.8509 ± 0.0023 | 0.8218 ± 0.0001 | 0.8167 ± 0.0022 |") in text
    committed = (BENCH / "RESULTS.md").read_text()
    for line in text.splitlines():
        if line.startswith("| ") and "![" not in line:
            assert line in committed, line


def test_the_tuned_section_reads_the_gap_to_the_trees(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({
        "cpu": "a CPU", "config": "benchmarks/tune/census_mmoe.yaml", "best_value": 0.97,
        "best_values": {"training.learning_rate": 0.0015, "model.args.num_experts": 16},
        "trials": [{"number": 0, "state": "COMPLETE", "value": 0.97, "params": {}},
                   {"number": 1, "state": "PRUNED", "value": None, "params": {}}],
        "runs": [{"seed": 1, "test": {"income": {"auc": 0.95}}},
                 {"seed": 2, "test": {"income": {"auc": 0.94}}}],
        "hgb": {"income": 0.9527}}))
    wide = tmp_path / "tuned_census_mmoe_wide.json"
    wide.write_text(json.dumps({
        **json.loads(path.read_text()), "config": "benchmarks/tune/census_mmoe_wide.yaml",
        "runs": [{"seed": 1, "test": {"income": {"auc": 0.9531}}}],
        "also": [{"model": "PLE", "args": {"num_levels": 2},
                  "runs": [{"seed": 1, "test": {"income": {"auc": 0.9520}}}]}]}))
    text = "\n".join(report.tuned_section([path, wide, tmp_path / "absent.json"]))
    assert "1 complete of 2 trials" in text
    assert "| 0.9450 (0.9500, 0.9400) |" in text and "| 0.9527 |" in text
    assert "MMoE: income -0.0077" in text
    assert "`python benchmarks/tuned.py --config benchmarks/tune/census_mmoe_wide.yaml`" in text
    assert "| MMoE, tuned wide (" in text and "| 1 | 0.9531 (0.9531) |" in text
    assert "MMoE: income +0.0004; PLE: income -0.0007" in text
    assert "| PLE with the best trial's settings, not tuned for it (num_levels: 2) | 1 | " \
           "0.9520 (0.9520) |" in text
    assert "Not run yet" in "\n".join(report.tuned_section([tmp_path / "absent.json"]))


def test_the_task_affinity_section_renders_the_matrix_and_the_groups(tmp_path):
    names = ["a1", "a2", "b1", "b2"]
    z = [[0.006, 0.0014, 0.0003, 0.0004], [0.0013, 0.007, 0.0004, 0.0003],
         [0.0003, 0.0004, 0.007, 0.0015], [0.0004, 0.0004, 0.0015, 0.005]]
    path = tmp_path / "task_affinity.json"
    path.write_text(json.dumps({
        "task_names": names, "within_pair_cosine": 0.9, "rows": 20000, "dim": 32,
        "seed": 1, "model": "MMoE", "num_shared_parameters": 9360, "steps": 300,
        "batch_size": 128, "learning_rate": 0.01, "affinity": z,
        "stderr": [[0.00002] * 4] * 4, "gradient_cosine": [[1.0, 0.21, 0.05, 0.07]] * 4,
        "groups": [["a1", "a2"], ["b1", "b2"]], "score": 0.00143,
        "groups_by_gradient_cosine": [["a1", "a2"], ["b1", "b2"]],
        "recovered_pairs": True, "seconds": 10.3}))
    (tmp_path / "task_affinity.png").write_bytes(b"png")
    text = "\n".join(report.task_affinity_section(path, tmp_path, "figures"))
    assert "| a1 | +0.00600 ± 0.00002 | +0.00140 ± 0.00002 |" in text
    assert "| b2 | +1.000 | +0.210 | +0.050 | +0.070 |" in text
    assert "{a1, a2} and {b1, b2}, TAG score 0.00143 (the generating pairs)" in text
    assert "![task affinity](figures/task_affinity.png)" in text
    absent = "\n".join(report.task_affinity_section(tmp_path / "absent.json", tmp_path, "f"))
    assert "Not run yet" in absent


def test_the_ablation_table_sets_served_metrics_side_by_side(tmp_path):
    suite = suites.parse_suite("mm", {
        "description": "d", "configs": "clothing_multimodal", "rows": "config",
        "ablations": {"text_removed": {"blank": TEXT_INPUTS}},
        "report": {"title": "MM", "columns": ["recommended:auc"], "make": "bench-multimodal"}})

    def entry(name, seed, served, removed, blanked, model="MMoE"):
        e = _entry(name, seed, {"recommended": {"auc": served + 1e-5}}, model)
        e["metrics"].update(test_served={"recommended": {"auc": served}},
                            test_text_removed={"recommended": {"auc": removed}})
        e["ablations"] = {"text_removed": {"blank": TEXT_INPUTS, "blanked": blanked}}
        e["serving_seconds"] = 3.0
        return e

    record = {"machine": {}, "runs": [
        entry("mmoe_tabular", 1, 0.58, 0.58, []), entry("mmoe_tabular", 2, 0.60, 0.60, []),
        entry("mmoe_text_dropout", 1, 0.93, 0.79, TEXT_INPUTS),
        entry("mmoe_text_dropout", 2, 0.95, 0.81, TEXT_INPUTS),
        entry("ple_text", 1, 0.90, 0.60, TEXT_INPUTS, model="PLE"),
        _entry("ple_tabular", 1, {"recommended": {"auc": 0.5}}, "PLE")]}  # not served: left out
    text = "\n".join(report.table_section(suite, record, tmp_path, "figs"))
    assert "### Served through the SavedModel: all inputs vs text removed" in text
    configs = len(run.load_suite("clothing_multimodal").config_files())
    assert f"**Partial record**: 4 of the suite's {configs} configs, seeds [1, 2]" in text
    assert ("| config | model | seeds | recommended auc: all inputs | recommended auc: text "
            "removed | recommended auc: gain kept |") in text
    assert "| mmoe_tabular | MMoE | 2 | 0.5900 ± 0.0141 | 0.5900 ± 0.0141 | (reference) |" in text
    # (0.80 - 0.59) / (0.94 - 0.59)
    assert "| mmoe_text_dropout | MMoE | 2 | 0.9400 ± 0.0141 | 0.8000 ± 0.0141 | 60% |" in text
    # ple_text has no reference row (no served PLE row without the text)
    assert "| ple_text | PLE | 1 | 0.9000 ± 0.0000 | 0.6000 ± 0.0000 | — |" in text
    assert "ple_tabular |" not in text.split("### Served")[1]
    assert "largest absolute difference over 5 runs: 1.0e-05" in text
    assert "![mm: all inputs vs text removed](figs/mm_text_removed.png)" in text
    assert (tmp_path / "mm_text_removed.png").stat().st_size > 1000
    assert report.gain_kept(0.59, 0.94, 0.59) == 0 and report.gain_kept(0.7, 0.6, 0.6) is None
    unserved = {"machine": {}, "runs": [_entry("mmoe_tabular", 1, {"recommended": {"auc": 0.5}})]}
    assert "Not served yet" in "\n".join(report.table_section(suite, unserved))
