"""SavedModel exports (`mtrec.export.saved_model`): written whole, refused
over an existing export unless asked, safe against SIGKILL; one serving name
per feature, hyphens and spaces included, from the signature to `mtrec
predict`."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from helpers import kill_when_ready
from mtrec.export import export_for_serving, saved_model, serving_input_names
from mtrec.export.serving import WARMUP_FILE


@pytest.fixture(scope="module")
def hyphenated(tmp_path_factory):
    """A small model on columns named as in Census ("educational-num") and
    with spaces, saved as a .keras file."""
    rng = np.random.default_rng(0)
    rows = 64
    frame = pd.DataFrame({
        "educational-num": rng.integers(1, 16, rows),
        "capital gain": rng.normal(size=rows).astype("float32"),
        "native-country": rng.choice(["US", "Mexico", "?"], rows),
        "income": rng.integers(0, 2, rows),
    })
    schema = mtrec.Schema.infer(frame, tasks={"income": "binary"}, verbose=False)
    schema.adapt(frame)
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    folder = tmp_path_factory.mktemp("hyphenated")
    model.save(folder / "model.keras")
    return {"frame": frame, "schema": schema, "model": model,
            "keras": folder / "model.keras"}


def predictions(path, raw):
    """The `income` predictions of the SavedModel at `path` on raw features."""
    loaded = tf.saved_model.load(str(path))
    names = serving_input_names(mtrec.export.read_export_schema(path)[0])
    serve = loaded.signatures["serving_default"]
    return serve(**{names[k]: tf.constant(v) for k, v in raw.items()})["income"].numpy()


def other_model(schema, seed):
    keras.utils.set_random_seed(seed)
    return mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])


# --------------------------------------------------------------------------
# written whole
# --------------------------------------------------------------------------
def test_an_existing_export_is_refused_unless_overwrite(hyphenated, tmp_path):
    schema, model = hyphenated["schema"], hyphenated["model"]
    raw = schema.raw_features(hyphenated["frame"].head(5))
    path = saved_model(model, tmp_path / "m")
    first = predictions(path, raw)
    other = other_model(schema, seed=7)
    with pytest.raises(ValueError, match=r"already holds a SavedModel; refusing to "
                                         r"overwrite it\. Pass overwrite=True"):
        saved_model(other, path)
    np.testing.assert_array_equal(predictions(path, raw), first)
    assert saved_model(other, path, overwrite=True) == path
    replaced = predictions(path, raw)
    np.testing.assert_allclose(replaced, other.predict_on_batch(raw)["income"], atol=1e-6)
    assert not np.allclose(replaced, first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]   # nothing left aside
    # other files are refused alike; an empty folder is free
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match="files that are not a SavedModel"):
        saved_model(model, tmp_path / "notes")
    (tmp_path / "empty").mkdir()
    assert (saved_model(model, tmp_path / "empty") / "saved_model.pb").is_file()


def test_a_tf_serving_base_gets_versions_not_a_replacement(hyphenated, tmp_path):
    model = hyphenated["model"]
    base = tmp_path / "base"
    assert export_for_serving(model, base) == base / "1"
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"is a TF Serving base folder .* "
                                             r"export_for_serving"):
            saved_model(model, base, overwrite=overwrite)
    with pytest.raises(ValueError, match="is itself a SavedModel"):
        export_for_serving(model, base / "1")
    # a served version is never replaced in place (TF Serving would not reload it)
    with pytest.raises(ValueError, match=r"is a version of the TF Serving base .* does "
                                         r"not reload"):
        saved_model(model, base / "1", overwrite=True)
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_leftovers_of_dead_exports_are_cleaned_and_live_ones_named(hyphenated, tmp_path):
    model = hyphenated["model"]
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    (tmp_path / f"m.partial-{done.pid}").mkdir()           # a killed export's
    (tmp_path / f"m.partial-{done.pid}" / "saved_model.pb").write_bytes(b"half")
    saved_model(model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f"m.partial-{live.pid}").mkdir()
        with pytest.raises(ValueError, match=rf"m\.partial-{live.pid} is being written by "
                                             rf"another live process \(pid {live.pid}\)"):
            saved_model(model, tmp_path / "m", overwrite=True)
        # TF Serving versions name them alike
        (tmp_path / "base" / f"1.partial-{live.pid}").mkdir(parents=True)
        with pytest.raises(ValueError, match=rf"1\.partial-{live.pid} is being written"):
            export_for_serving(model, tmp_path / "base")
    finally:
        live.kill()
        live.wait()


KILLED_EXPORT = """
import sys, time, keras
import mtrec.utils.atomic
from mtrec.export import saved_model

def publish_folder(source, target, replace=True):   # everything written aside
    print("READY", flush=True)
    time.sleep(600)

mtrec.utils.atomic.publish_folder = publish_folder
saved_model(keras.saving.load_model(sys.argv[1]), sys.argv[2], overwrite=True)
"""


def test_sigkill_mid_export_leaves_the_old_export_loadable(hyphenated, tmp_path):
    schema = hyphenated["schema"]
    raw = schema.raw_features(hyphenated["frame"].head(5))
    path = saved_model(hyphenated["model"], tmp_path / "m")
    before = predictions(path, raw)
    other = other_model(schema, seed=3)
    other.save(tmp_path / "other.keras")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT,
                              str(tmp_path / "other.keras"), str(path)],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert kill_when_ready(child, timeout=120) == -signal.SIGKILL
    # the new export was complete, aside; the old one is untouched and loads
    partial = tmp_path / f"m.partial-{child.pid}"
    assert (partial / "saved_model.pb").is_file()
    np.testing.assert_array_equal(predictions(path, raw), before)
    # the next export cleans the dead process's folder up
    saved_model(other, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "other.keras"]
    np.testing.assert_allclose(predictions(path, raw), other.predict_on_batch(raw)["income"],
                               atol=1e-6)


# --------------------------------------------------------------------------
# one serving name per feature
# --------------------------------------------------------------------------
def signature_def_inputs(path, signature="serving_default"):
    """The input keys of a signature as TF Serving reads them (saved_model.pb)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    return set(proto.meta_graphs[0].signature_def[signature].inputs)


def test_serving_names_are_identifiers():
    frame = pd.DataFrame({"educational-num": [1.0], "Class Name": ["a"], "x/y": [1.0],
                          "1st": ["b"], "_id": ["c"], "ok_name": [2.0], "y": [1]})
    schema = mtrec.Schema.infer(frame, tasks={"y": "binary"}, verbose=False)
    assert serving_input_names(schema) == {
        "educational-num": "educational_num", "Class Name": "Class_Name", "x/y": "x_y",
        "1st": "f1st", "_id": "f_id", "ok_name": "ok_name"}
    clash = mtrec.Schema.infer(pd.DataFrame({"a-b": ["x"], "a b": ["y"], "y": [1]}),
                               tasks={"y": "binary"}, verbose=False)
    with pytest.raises(ValueError, match=r"Features \['a-b', 'a b'\] all become the "
                                         r"serving input 'a_b' .*; rename one"):
        serving_input_names(clash)


def test_one_name_per_input_in_signature_schema_and_warmup(hyphenated, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    schema, model, frame = hyphenated["schema"], hyphenated["model"], hyphenated["frame"]
    names = serving_input_names(schema)
    assert names == {"educational-num": "educational_num", "capital gain": "capital_gain",
                     "native-country": "native_country"}
    path = export_for_serving(model, tmp_path / "income", warmup_rows=frame.head(3))
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    # the signature's inputs (as TF Serving reads them) and its keyword
    # arguments (as Python calls them) are the same names
    assert signature_def_inputs(path) == set(served.structured_input_signature[1]) \
        == set(names.values())
    written = json.loads((path / "assets.extra" / "mtrec_schema.json").read_text())
    assert written["serving_names"] == names
    assert mtrec.export.read_export_schema(path) == (schema, names)
    # the warm-up requests use those names, and replay through the signature
    records = tf.data.TFRecordDataset(str(path / "assets.extra" / WARMUP_FILE))
    expected = model.predict_on_batch(schema.raw_features(frame.head(3)))["income"]
    for i, record in enumerate(records.as_numpy_iterator()):
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        assert set(request.inputs) == set(names.values())
        out = served(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        np.testing.assert_allclose(out["income"].numpy().reshape(-1), expected[i], atol=1e-6)


CLI_EXPORT_AND_PREDICT = """
import sys
from mtrec.cli import main
keras_file, export, source, target = sys.argv[1:]
sys.exit(main(["export", keras_file, export]) or main(["predict", export, source, target]))
"""


def test_mtrec_predict_on_the_savedmodel_of_hyphenated_columns(hyphenated, tmp_path):
    """Export and score in a fresh process: TF never renames an input (its
    "is not a valid tf.function parameter name" warning is not printed), and
    the SavedModel scores the file as the .keras file does."""
    frame = hyphenated["frame"]
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    result = subprocess.run(
        [sys.executable, "-c", CLI_EXPORT_AND_PREDICT, str(hyphenated["keras"]),
         str(tmp_path / "export"), str(source), str(tmp_path / "out.csv")],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not a valid tf.function parameter name" not in result.stderr
    assert "Sanitizing" not in result.stderr
    mtrec.export.predict_file(hyphenated["keras"], source, tmp_path / "keras.csv", log=None)
    by_savedmodel = pd.read_csv(tmp_path / "out.csv")
    by_keras = pd.read_csv(tmp_path / "keras.csv")
    assert list(by_savedmodel.columns) == list(by_keras.columns) == [
        *frame.columns, "income_prediction"]
    np.testing.assert_allclose(by_savedmodel["income_prediction"],
                               by_keras["income_prediction"], atol=1e-6)
