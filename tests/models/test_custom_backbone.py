"""The "Write your own backbone" snippet of the README, executed: the
backbone trains under several loss weightings, in MultiTaskModel and ESMM,
feeds gate diagnostics and exports a SavedModel."""

import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def two_experts():
    text = README.read_text()
    section = text.split("## Write your own backbone", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    assert "class TwoExperts(mtrec.layers.Backbone)" in snippet
    assert len(snippet.splitlines()) <= 50
    namespace = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    return namespace["TwoExperts"]


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "gradnorm", "pcgrad"])
def test_readme_backbone_trains_with_every_weighting(two_experts, table, schema, weighting):
    keras.utils.set_random_seed(0)
    model = mtrec.models.MultiTaskModel(schema, two_experts(len(schema.tasks), units=4),
                                        tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss_weighting=weighting)
    history = model.fit(mtrec.data.from_pandas(table.head(64), schema, batch_size=64),
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_readme_backbone_gates_and_export(two_experts, table, schema, tmp_path):
    model = mtrec.models.MultiTaskModel(schema, two_experts(len(schema.tasks), units=4),
                                        tower_units=[4])
    report = mtrec.evaluation.gates(model, table.head(50), collapse_threshold=1.0)
    assert list(report.usage.columns) == ["expert_0", "expert_1"]
    assert list(report.usage.index.get_level_values("gate")) == schema.task_names
    np.testing.assert_allclose(report.usage.sum(axis=1), 1.0, rtol=1e-5)

    mtrec.export.saved_model(model, tmp_path / "export")
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    raw = schema.raw_features(table.head(4))
    served = serve(**{k: tf.constant(v) for k, v in raw.items()})
    expected = model.predict_on_batch(raw)
    for task in schema.task_names:
        np.testing.assert_allclose(served[task].numpy(), expected[task], rtol=1e-5, atol=1e-6)


def test_readme_backbone_under_esmm(two_experts):
    rng = np.random.default_rng(0)
    click = rng.integers(0, 2, 80)
    df = pd.DataFrame({"item": rng.choice(list("abc"), 80), "price": rng.normal(size=80),
                       "click": click, "conversion": click * rng.integers(0, 2, 80)})
    schema = mtrec.Schema.infer(df, tasks=mtrec.models.funnel_tasks(), verbose=False,
                                exclude=["click", "conversion"]).adapt(df)
    model = mtrec.models.ESMM(schema, backbone=two_experts(2, units=4), tower_units=[4])
    model.compile(loss_weighting="uncertainty")
    model.fit(mtrec.data.from_pandas(df, schema, batch_size=80), epochs=1, verbose=0)
    out = model.predict_on_batch(schema.raw_features(df.head(3)))
    np.testing.assert_allclose(out["ctcvr"], out["ctr"] * out["cvr"], rtol=1e-6)
    assert [level for level, _, _ in model.gate_structure()] == ["experts"]
