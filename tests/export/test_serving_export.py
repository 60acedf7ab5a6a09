"""Serving layout, the tf.Example signature, saved_model_cli and TFRS interop."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mtrec
from mtrec.export import EXAMPLE_SIGNATURE, export_for_serving, to_tf_examples


@pytest.fixture(scope="module")
def exported(table, schema, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=3, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=1, verbose=0)
    base = tmp_path_factory.mktemp("serving") / "mmoe"
    path = export_for_serving(model, base, warmup_rows=table.head(3))
    return model, base, path


def test_version_folders_and_schema(exported, schema, table):
    model, base, path = exported
    assert path == base / "1"
    assert mtrec.Schema.from_json(path / "assets.extra" / "mtrec_schema.json") == schema
    second = export_for_serving(model, base)
    assert second == base / "2"
    with pytest.raises(ValueError, match="already exists"):
        export_for_serving(model, base, version=1)
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]   # nothing left aside
    shutil.rmtree(second)


def test_warmup_requests_are_predict_logs(exported, schema):
    from tensorflow_serving.apis import prediction_log_pb2
    _, _, path = exported
    records = list(tf.data.TFRecordDataset(
        str(path / "assets.extra" / "tf_serving_warmup_requests")).as_numpy_iterator())
    assert len(records) == 3
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert set(request.inputs) == set(schema.feature_names)


def test_example_signature_matches_raw_signature(exported, schema, table):
    model, _, path = exported
    rows = table.head(5).copy()
    rows.loc[0, "num"] = np.nan        # absent from the proto
    rows.at[1, "vec"] = None           # absent from the proto
    rows.loc[2, "color"] = "unseen"
    loaded = tf.saved_model.load(str(path))
    by_example = loaded.signatures[EXAMPLE_SIGNATURE](
        examples=tf.constant(to_tf_examples(schema, rows)))
    expected = model.predict_on_batch(schema.raw_features(rows))
    for task in expected:
        np.testing.assert_allclose(by_example[task].numpy(), expected[task], atol=1e-6)
    # An empty tf.Example is scored as "every value missing".
    empty = loaded.signatures[EXAMPLE_SIGNATURE](
        examples=tf.constant([tf.train.Example().SerializeToString()]))
    missing = {**{name: np.full((1,), np.nan, "float32")
                  for name in schema.feature_names},
               "color": np.array([""], object), "title": np.array([""], object),
               "tags": np.array([""], object), "user_id": np.array([-1], "int64"),
               "vec": np.full((1, 4), np.nan, "float32")}
    reference = model.predict_on_batch(missing)
    for task in reference:
        np.testing.assert_allclose(empty[task].numpy(), reference[task], atol=1e-6)


def test_example_signature_takes_numbers_as_float_or_int64_lists(exported, schema, table):
    """Integer columns are the norm: a numeric feature may come as an
    int64_list as well as a float_list (an empty list is missing)."""
    model, _, path = exported
    rows = table.head(4).copy()
    rows["num"] = [3.0, -2.0, np.nan, 0.5]
    protos = [tf.train.Example.FromString(b) for b in to_tf_examples(schema, rows)]
    for i in (0, 1):                                   # 3 and -2 as int64_list
        feature = protos[i].features.feature["num"]
        value = int(feature.float_list.value[0])
        feature.Clear()
        feature.int64_list.value.append(value)
    protos[2].features.feature["num"].int64_list.SetInParent()   # empty: missing
    assert [p.features.feature["num"].WhichOneof("kind") for p in protos] == [
        "int64_list", "int64_list", "int64_list", "float_list"]
    serve = tf.saved_model.load(str(path)).signatures[EXAMPLE_SIGNATURE]
    out = serve(examples=tf.constant([p.SerializeToString() for p in protos]))
    expected = model.predict_on_batch(schema.raw_features(rows))
    for task in expected:
        np.testing.assert_allclose(out[task].numpy(), expected[task], atol=1e-6)
    # text where a number belongs, or two numbers, are refused
    wrong = tf.train.Example.FromString(protos[3].SerializeToString())
    wrong.features.feature["num"].Clear()
    wrong.features.feature["num"].bytes_list.value.append(b"3")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Key: num\b.*Data types don't match"):
        serve(examples=tf.constant([wrong.SerializeToString()]))
    wrong.features.feature["num"].Clear()
    wrong.features.feature["num"].int64_list.value.extend([1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than one value"):
        serve(examples=tf.constant([wrong.SerializeToString()]))


def test_saved_model_cli_lists_both_signatures(exported):
    _, _, path = exported
    cli = shutil.which("saved_model_cli") or str(Path(sys.executable).parent / "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", str(path), "--all"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    for signature in ("serving_default", EXAMPLE_SIGNATURE):
        assert f"signature_def['{signature}']" in text
    for task in ("click", "spend", "grade"):
        assert f"outputs['{task}']" in text
    assert "inputs['examples']" in text and "inputs['color']" in text


def test_legacy_tf_keras_tfrs_process_uses_the_export(exported, schema, table):
    """A tf-keras process (TF_USE_LEGACY_KERAS=1) with tensorflow-recommenders
    loads the export and uses it as the ranking stage of a TFRS model."""
    model, _, path = exported
    rows = table.head(8)
    raw = schema.raw_features(rows)
    payload = {k: (v.tolist() if v.dtype != object else [str(s) for s in v])
               for k, v in raw.items()}
    labels = rows["click"].astype("float32").tolist()
    script = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_recommenders as tfrs
        assert "tf_keras" in tf.keras.__name__, tf.keras.__name__
        path, payload, labels = sys.argv[1], json.loads(sys.stdin.read()), None
        payload, labels = payload["features"], payload["labels"]
        loaded = tf.saved_model.load(path)   # keep: signatures reference its variables
        served = loaded.signatures["serving_default"]
        dtypes = {k: s.dtype for k, s in served.structured_input_signature[1].items()}

        class Ranker(tfrs.models.Model):
            def __init__(self):
                super().__init__()
                self.task = tfrs.tasks.Ranking(
                    loss=tf.keras.losses.BinaryCrossentropy(),
                    metrics=[tf.keras.metrics.AUC(name="auc")])
            def call(self, features):
                return served(**features)["click"]
            def compute_loss(self, inputs, training=False):
                features, y = inputs
                return self.task(labels=y, predictions=self(features))

        ranker = Ranker()
        ranker.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
        feats = {k: tf.constant(v, dtype=dtypes[k]) for k, v in payload.items()}
        data = tf.data.Dataset.from_tensors((feats, tf.constant(labels)))
        metrics = ranker.evaluate(data, return_dict=True, verbose=0)
        print(json.dumps({"click": ranker(feats).numpy().tolist(), "metrics": metrics}))
    """)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(path)],
                            input=json.dumps({"features": payload, "labels": labels}),
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    expected = model.predict_on_batch(raw)["click"]
    np.testing.assert_allclose(out["click"], expected, atol=1e-6)
    assert "auc" in out["metrics"] and "loss" in out["metrics"]


def test_feature_names_outside_the_signature_alphabet(tmp_path):
    import pandas as pd
    df = pd.DataFrame({"Class Name": ["a", "b", "a", "c"], "x/y": [1.0, 2.0, 3.0, 4.0],
                       "y": [0, 1, 0, 1]})
    schema = mtrec.Schema.infer(df, tasks={"y": "binary"}, verbose=False).adapt(df)
    assert mtrec.export.serving_input_names(schema) == {"Class Name": "Class_Name",
                                                        "x/y": "x_y"}
    model = mtrec.models.MMoE(schema, num_experts=2)
    path = mtrec.export.saved_model(model, tmp_path / "m")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = serve(Class_Name=tf.constant(["a", "zz"]), x_y=tf.constant([1.0, np.nan]))
    expected = model.predict_on_batch({"Class Name": np.array(["a", "zz"], object),
                                       "x/y": np.array([1.0, np.nan], "float32")})
    np.testing.assert_allclose(out["y"].numpy(), expected["y"], atol=1e-6)
    clash = pd.DataFrame({"a b": ["x"], "a_b": ["y"], "y": [1]})
    schema = mtrec.Schema.infer(clash, tasks={"y": "binary"}, verbose=False)
    with pytest.raises(ValueError, match="rename one"):
        mtrec.export.serving_input_names(schema)
