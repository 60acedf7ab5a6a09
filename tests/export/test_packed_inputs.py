"""The packed serving signature (`mtrec.export.packed_inputs`): its layout,
written into the export; predictions equal to Keras' and to
`serving_default`'s, missing values included; a matrix of the wrong width
refused with the width expected."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import mtrec
from mtrec.export import PACKED_SIGNATURE, pack_features, packed_layout, serving_input_names

TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}


@pytest.fixture(scope="module")
def served(table, tmp_path_factory):
    """Every feature kind, plus a hashed string categorical between the
    fused ones (so the fused columns are not the whole `strings` matrix),
    exported once."""
    rng = np.random.default_rng(3)
    frame = table.assign(shop=rng.choice(["a", "b", "c", "d"], len(table)))
    frame = frame[["num", "color", "shop", "tags", "user_id", "vec", "title", "click",
                   "spend", "grade"]]
    schema = mtrec.Schema.infer(frame, tasks=TASKS, verbose=False,
                                tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"),
                                shop=mtrec.Categorical("shop", num_hash_bins=8)).adapt(frame)
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[8], tower_units=[4])
    path = mtrec.export.saved_model(model, tmp_path_factory.mktemp("packed") / "export")
    return {"frame": frame, "schema": schema, "model": model, "path": path,
            "loaded": tf.saved_model.load(str(path))}


def feeds(arrays):
    return {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in arrays.items()}


def with_missing_values(raw):
    """A copy of `raw` with a missing value in each feature, spread over rows."""
    raw = {k: np.array(v) for k, v in raw.items()}
    raw["num"][0] = np.nan
    raw["color"][1] = ""
    raw["shop"][2] = ""
    raw["tags"][3] = ""
    raw["user_id"][4] = -1
    raw["vec"][5] = np.nan
    raw["title"][6] = ""
    raw["color"][7], raw["user_id"][7] = "never-seen", 10**6   # out of vocabulary
    return raw


def test_the_layout_groups_features_by_dtype_numerics_first(served):
    layout = packed_layout(served["schema"])
    assert layout == {
        "floats": [("num", 0, 1), ("vec", 1, 4)],
        "strings": [("color", 0, 1), ("shop", 1, 1), ("tags", 2, 1), ("title", 3, 1)],
        "integers": [("user_id", 0, 1)]}
    written = json.loads((served["path"] / "assets.extra" / "mtrec_schema.json").read_text())
    assert written["packed_inputs"]["signature"] == PACKED_SIGNATURE
    assert written["packed_inputs"]["floats"] == {"width": 5, "columns": [
        {"feature": "num", "start": 0, "width": 1}, {"feature": "vec", "start": 1, "width": 4}]}
    assert [c["feature"] for c in written["packed_inputs"]["strings"]["columns"]] == [
        "color", "shop", "tags", "title"]
    # the export's schema still reads back
    schema, names = mtrec.export.read_export_schema(served["path"])
    assert schema.feature_names == served["schema"].feature_names


def test_pack_features_places_each_column(served):
    schema, frame = served["schema"], served["frame"].head(3)
    raw = schema.raw_features(frame)
    packed = pack_features(schema, frame)
    assert set(packed) == {"floats", "strings", "integers"}
    assert packed["floats"].shape == (3, 5) and packed["floats"].dtype == np.float32
    np.testing.assert_array_equal(packed["floats"][:, 0], raw["num"])
    np.testing.assert_array_equal(packed["floats"][:, 1:], raw["vec"])
    assert packed["strings"][:, 2].tolist() == raw["tags"].tolist()
    assert packed["integers"].dtype == np.int64
    np.testing.assert_array_equal(packed["integers"][:, 0], raw["user_id"])
    # the raw dict packs the same
    again = pack_features(schema, raw)
    assert all(np.array_equal(again[k], packed[k]) for k in packed)
    with pytest.raises(ValueError, match=r"no values for feature\(s\) \['title'\]"):
        pack_features(schema, {k: v for k, v in raw.items() if k != "title"})


def test_packed_predictions_equal_keras_and_serving_default_with_missing_values(served):
    schema, model, loaded = served["schema"], served["model"], served["loaded"]
    raw = with_missing_values(schema.raw_features(served["frame"].head(16)))
    expected = model.predict_on_batch(raw)
    packed = loaded.signatures[PACKED_SIGNATURE](**feeds(pack_features(schema, raw)))
    names = serving_input_names(schema)
    default = loaded.signatures["serving_default"](
        **{names[k]: v for k, v in feeds(raw).items()})
    assert set(packed) == set(expected) == {"click", "spend", "grade"}
    for task in expected:
        np.testing.assert_allclose(packed[task].numpy(), expected[task], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(packed[task].numpy(), default[task].numpy())
    # the rows differ (a constant model would pass the comparisons above)
    assert np.ptp(expected["spend"]) > 1e-4
    assert packed["grade"].shape == (16, 3)


@pytest.mark.parametrize("name, width, expected", [
    ("floats", 4, r"input floats must have 5 columns: num, vec \(4 columns\) "),
    ("strings", 5, r"input strings must have 4 columns: color, shop, tags, title "),
])
def test_a_matrix_of_another_width_is_refused_naming_the_expected_one(
        served, name, width, expected):
    schema = served["schema"]
    packed = pack_features(schema, served["frame"].head(2))
    packed[name] = np.concatenate([packed[name]] * 2, axis=1)[:, :width]
    with pytest.raises(tf.errors.InvalidArgumentError, match=(
            expected + r"\(the layout is packed_inputs in assets\.extra/mtrec_schema\.json"
            + rf".*Columns found:\] \[{width}\]")):
        served["loaded"].signatures[PACKED_SIGNATURE](**feeds(packed))
