"""Batch scoring of CSV / Parquet files (`mtrec.export.file_scoring`)."""

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.data.registry import load_dataset
from mtrec.export import file_scoring
from mtrec.export.file_scoring import iter_table, predict_file, prediction_columns
from helpers import read_output, write_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An MMoE fitted one epoch on synthetic_tiny, as a .keras file and a
    SavedModel."""
    folder = tmp_path_factory.mktemp("scoring")
    data = load_dataset("synthetic_tiny", rows=1500, seed=1)
    keras.utils.set_random_seed(0)
    schema = mtrec.Schema.infer(data.train, tasks=data.tasks, verbose=False)
    schema.adapt(data.train)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[8], tower_units=[4])
    model.compile(optimizer="adam")
    model.fit(mtrec.data.from_pandas(data.train, schema, batch_size=256), epochs=1,
              verbose=0)
    model.save(folder / "model.keras")
    mtrec.export.saved_model(model, folder / "export")
    return {"keras": folder / "model.keras", "savedmodel": folder / "export",
            "folder": folder, "test": data.test, "model": model}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("kind", ["keras", "savedmodel"])
def test_predict_matches_model_predict(trained, tmp_path, fmt, kind):
    test, model = trained["test"], trained["model"]
    expected = model.predict(model.schema.raw_features(test), verbose=0)
    source = write_table(test, tmp_path / f"in.{fmt}")
    target = tmp_path / f"out.{'parquet' if fmt == 'csv' else 'csv'}"
    lines = []
    assert predict_file(trained[kind], source, target, batch_size=128,
                        log=lines.append) == target
    assert lines == [f"Scored {len(test)} rows of {source} -> {target} "
                     f"(click_prediction, like_prediction)"]
    out = read_output(target)
    # input columns first, then one column per task, always <task>_prediction
    # ('click' and 'like' are also label columns of the input)
    assert list(out.columns) == list(test.columns) + ["click_prediction",
                                                      "like_prediction"]
    assert len(out) == len(test)
    for task in ("click", "like"):
        np.testing.assert_allclose(out[f"{task}_prediction"].to_numpy(),
                                   np.asarray(expected[task]).reshape(-1), atol=1e-5)
    pd.testing.assert_frame_equal(out[list(test.columns)].reset_index(drop=True),
                                  test.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_every_feature_kind_and_multiclass(table, schema, tmp_path, fmt):
    # The shared fixture table has string/int categoricals (with missing
    # values), numerics with NaN, multi-hot, text and vector columns, and a
    # multiclass task.
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.save(tmp_path / "m.keras")
    features = table.drop(columns=["click", "spend", "grade"])
    expected = model.predict(schema.raw_features(features), verbose=0)
    source = write_table(features, tmp_path / f"in.{fmt}")
    predict_file(tmp_path / "m.keras", source, tmp_path / "out.csv", batch_size=64,
                 log=None)
    out = pd.read_csv(tmp_path / "out.csv")
    # without label columns in the input, the names are the same
    grades = ["grade_prediction_0", "grade_prediction_1", "grade_prediction_2"]
    assert list(out.columns) == list(features.columns) + [
        "click_prediction", "spend_prediction", *grades]
    np.testing.assert_allclose(out["click_prediction"], expected["click"].reshape(-1),
                               atol=1e-5)
    np.testing.assert_allclose(out["spend_prediction"], expected["spend"].reshape(-1),
                               atol=1e-5)
    np.testing.assert_allclose(out[grades].to_numpy(), expected["grade"], atol=1e-5)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_in_chunks_equals_one_pass(trained, tmp_path, fmt):
    """Reading, scoring and writing 37 rows at a time gives the same file as
    one pass (the row count is not a multiple of the chunk)."""
    test = trained["test"]
    source = write_table(test, tmp_path / f"in.{fmt}")
    whole, chunked = tmp_path / f"whole.{fmt}", tmp_path / f"chunked.{fmt}"
    predict_file(trained["keras"], source, whole, log=None)
    predict_file(trained["keras"], source, chunked, chunk_rows=37, batch_size=16, log=None)
    assert len(test) % 37 != 0
    pd.testing.assert_frame_equal(read_output(chunked), read_output(whole))
    assert not list(tmp_path.glob("*.partial"))


def test_a_bad_value_in_a_late_chunk_leaves_no_output(trained, tmp_path):
    # CSV: a Parquet column has one type throughout, so it fails at chunk 1.
    frame = trained["test"].copy()
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[frame.index[-1], "x1"] = "high"   # only the last chunk is bad
    source = write_table(frame, tmp_path / "in.csv")
    target = tmp_path / "o.csv"
    with pytest.raises(ValueError, match="Column 'x1'"):
        predict_file(trained["folder"], source, target, chunk_rows=50, log=None)
    assert not target.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_only_file(trained, tmp_path, fmt):
    source = write_table(trained["test"].iloc[:0], tmp_path / f"in.{fmt}")
    lines = []
    predict_file(trained["keras"], source, tmp_path / "o.csv", chunk_rows=10,
                 log=lines.append)
    out = pd.read_csv(tmp_path / "o.csv")
    assert len(out) == 0 and list(out.columns)[-2:] == ["click_prediction",
                                                        "like_prediction"]
    assert lines[0].startswith("Scored 0 rows")


def test_a_column_of_the_wrong_type_is_named(trained, tmp_path):
    source = write_table(trained["test"].assign(x1="high"), tmp_path / "in.parquet")
    with pytest.raises(ValueError, match="Column 'x1'"):
        predict_file(trained["keras"], source, tmp_path / "o.csv", log=None)


def test_a_missing_column_is_named_with_a_suggestion(trained, tmp_path):
    frame = trained["test"].rename(columns={"x2": "X2"})
    source = write_table(frame, tmp_path / "in.csv")
    with pytest.raises(ValueError) as caught:
        predict_file(trained["keras"], source, tmp_path / "o.csv", log=None)
    assert "missing column(s) ['x2'] that the model needs" in str(caught.value)
    assert "'x2' -> did you mean 'X2'?" in str(caught.value)


def test_file_and_argument_errors(trained, tmp_path):
    source = write_table(trained["test"], tmp_path / "in.csv")
    (tmp_path / "in.json").write_text("{}")
    cases = [
        ((source, tmp_path / "out.txt"), {}, "Output file .*out.txt is neither CSV"),
        ((tmp_path / "in.json", tmp_path / "o.csv"), {}, "Input file .*in.json is neither"),
        ((tmp_path / "nothere.csv", tmp_path / "o.csv"), {}, "does not exist"),
        ((source, tmp_path / "o.csv"), {"batch_size": 0}, "batch_size must be an integer"),
        ((source, tmp_path / "o.csv"), {"chunk_rows": 2.5}, "chunk_rows must be an integer"),
    ]
    for (input_path, output_path), kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            predict_file(trained["keras"], input_path, output_path, log=None, **kwargs)
    assert not (tmp_path / "o.csv").exists()


def test_load_scorer_errors(trained, tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="neither a SavedModel"):
        file_scoring.load_scorer(tmp_path / "folder")
    with pytest.raises(ValueError, match="does not exist"):
        file_scoring.load_scorer(tmp_path / "none.keras")
    # a SavedModel without the schema mtrec writes beside it
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "saved_model.pb").write_bytes(trained["savedmodel"].joinpath(
        "saved_model.pb").read_bytes())
    with pytest.raises(ValueError, match="has no assets.extra/mtrec_schema.json"):
        file_scoring.load_scorer(bare)


def test_load_scorer_scores_alike(trained):
    test = trained["test"].iloc[:20]
    results = []
    for kind in ("keras", "savedmodel"):
        schema, score = file_scoring.load_scorer(trained[kind])
        assert schema.feature_names == ["color", "x1", "x2"]
        results.append(score(schema.raw_features(test)))
    for task in ("click", "like"):
        np.testing.assert_allclose(np.reshape(results[0][task], -1),
                                   np.reshape(results[1][task], -1), atol=1e-5)


def test_iter_table_reads_columns_as_the_model_takes_them(tmp_path):
    schema = mtrec.Schema(
        [mtrec.Categorical("shop"), mtrec.Categorical("item", dtype="int64"),
         mtrec.Numeric("price")], tasks=[mtrec.TaskSpec("click")])
    path = tmp_path / "in.csv"
    path.write_text("shop,item,price,note\n007,3,0.123456789012,NA\nNA,,NA,x\n,5,1,y\n")
    frames = list(iter_table(path, schema, chunk_rows=2))
    assert [len(f) for f in frames] == [2, 1]
    assert list(frames[1].index) == [2]                 # a running row index
    frame = pd.concat(frames)
    # string ids keep their zeros; "NA" is a category, only "" is missing
    assert frame["shop"].tolist() == ["007", "NA", None]
    assert str(frame["item"].dtype) == "Int64"
    assert frame["item"].isna().tolist() == [False, True, False]
    # numbers keep their precision; other columns pass through as pandas reads them
    assert frame["price"].dtype == np.float64 and frame["price"].iloc[0] == 0.123456789012
    assert np.isnan(frame["price"].iloc[1])
    assert frame["note"].isna().tolist() == [True, False, False]
    schema.validate(frame)


def test_iter_table_parses_vectors_in_csv(tmp_path):
    schema = mtrec.Schema([mtrec.Vector("emb")], tasks=[mtrec.TaskSpec("click")])
    path = tmp_path / "in.csv"
    path.write_text('emb\n"[0.5, 1.0]"\n[0.25 2]\n\n')
    frame = next(iter_table(path, schema, chunk_rows=10))
    assert frame["emb"].tolist() == [[0.5, 1.0], [0.25, 2.0]]


def test_prediction_columns_of_a_multiclass_task():
    schema = mtrec.Schema([mtrec.Numeric("a")],
                          tasks=[mtrec.TaskSpec("grade", "multiclass", num_classes=3),
                                 mtrec.TaskSpec("ctr")])
    predictions = {"grade": np.eye(3)[[0, 2]], "ctr": np.array([[0.1], [0.2]])}
    grades = ["grade_prediction_0", "grade_prediction_1", "grade_prediction_2"]
    for existing in ([], ["a", "ctr", "grade"]):   # the same names either way
        columns = prediction_columns(schema, predictions, existing=existing)
        assert list(columns) == [*grades, "ctr_prediction"]
    np.testing.assert_array_equal(columns["grade_prediction_2"], [0.0, 1.0])
    np.testing.assert_array_equal(columns["ctr_prediction"], [0.1, 0.2])
    empty = prediction_columns(schema, {"grade": np.zeros((0,)), "ctr": np.zeros((0,))})
    assert {name: column.shape for name, column in empty.items()} == {
        **{name: (0,) for name in grades}, "ctr_prediction": (0,)}
    with pytest.raises(ValueError, match=r"already has column\(s\) \['ctr_prediction'\]"):
        prediction_columns(schema, predictions, existing=["a", "ctr_prediction"])


def test_a_savedmodel_scorer_names_the_column_of_a_wrong_dtype(trained):
    schema, score = file_scoring.load_scorer(trained["savedmodel"])
    raw = schema.raw_features(trained["test"].iloc[:4])
    with pytest.raises(ValueError, match=r"Column 'x1' \(served as 'x1'\) is <U1 but "
                                         r"the model takes float32"):
        score({**raw, "x1": np.array(["a", "b", "c", "d"])})
    with pytest.raises(ValueError, match=r"Column 'color' \(served as 'color'\) is "
                                         r"float64 but the model takes string"):
        score({**raw, "color": np.zeros(4)})
    with pytest.raises(ValueError, match=r"Column 'x2' .* has shape \(4, 2\) but the "
                                         r"model takes \(rows\)"):
        score({**raw, "x2": np.zeros((4, 2), "float32")})
    # integers where the model takes floats are numbers all the same
    as_ints = score({**raw, "x1": np.arange(4)})["click"]
    as_floats = score({**raw, "x1": np.arange(4, dtype="float32")})["click"]
    np.testing.assert_allclose(as_ints, as_floats)


def test_integer_ids_that_are_not_integers_are_refused(table, schema, tmp_path):
    keras.utils.set_random_seed(0)
    mtrec.models.MMoE(schema, num_experts=2, expert_units=[4],
                      tower_units=[4]).save(tmp_path / "m.keras")
    features = table.drop(columns=["click", "spend", "grade"]).head(40)
    features["user_id"] = features["user_id"].astype("Int64")
    features.loc[[3, 9], "user_id"] = pd.NA
    source = write_table(features, tmp_path / "in.csv")
    predict_file(tmp_path / "m.keras", source, tmp_path / "out.csv", log=None)
    # missing ids stay missing in the output's copy, the others unchanged
    out = pd.read_csv(tmp_path / "out.csv", dtype={"user_id": "Int64"})
    pd.testing.assert_series_equal(out["user_id"], features["user_id"])
    bad = features.astype({"user_id": object})
    bad.loc[5, "user_id"] = "u17"
    source = write_table(bad, tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"Column 'user_id' is an integer Categorical but "
                                         r"holds values that are not integers: 'u17' in "
                                         r"row\(s\) 5"):
        predict_file(tmp_path / "m.keras", source, tmp_path / "bad-out.csv", log=None)
    assert not (tmp_path / "bad-out.csv").exists()
