"""CrossStitch: trains under every loss weighting with label masks, reports its
stitches as gates, runs from a run config, exports."""

import keras
import numpy as np
import pytest

import mtrec
from helpers import assert_saved_model_parity, tiny_run_config
from mtrec.experiments.config import ConfigError, parse_config


# 10-20 s each here (test_models trains CrossStitch with fixed weights in the fast suite)
@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "gradnorm", "dwa", "pcgrad"])
def test_trains_with_every_weighting_and_label_masks(masked, schema, weighting):
    keras.utils.set_random_seed(0)
    model = mtrec.models.CrossStitch(schema, column_units=[8, 4], tower_units=[4])
    before = [np.asarray(s).copy() for s in model.backbone.stitches]
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss_weighting=weighting)
    history = model.fit(mtrec.data.from_pandas(masked, schema, batch_size=100),
                        epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # the stitches are trained (GradNorm balances on them)
    assert all(not np.allclose(np.asarray(s), b)
               for s, b in zip(model.backbone.stitches, before))


def test_gate_diagnostics_report_the_stitches(table, schema):
    model = mtrec.models.CrossStitch(schema, column_units=[4, 4], stitch_diagonal=0.8)
    model.backbone.stitches[1].assign(np.array(
        [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], "float32"))
    report = mtrec.evaluation.gates(model, table.head(50), collapse_threshold=1.0)
    columns = [f"{t}_column" for t in schema.task_names]
    assert list(report.usage.columns) == columns
    np.testing.assert_allclose(report.usage.loc["stitch_0"].to_numpy(),
                               0.1 + 0.7 * np.eye(3), rtol=1e-6)
    np.testing.assert_allclose(report.usage.loc["stitch_1"].to_numpy(),
                               np.asarray(model.backbone.stitches[1]), rtol=1e-6)
    assert report.entropy.loc[("stitch_1", "spend"), "entropy"] == pytest.approx(0.0)


def run_config(**args):
    config = tiny_run_config()
    config["model"] = {"name": "CrossStitch", "args": args}
    return config


def test_run_config_builds_it(schema):
    config = parse_config(run_config(column_units=[8], tower_units=[4], stitch_diagonal=0.8))
    model = mtrec.models.ALL_MODELS[config.model.name](schema, **config.model.args)
    assert isinstance(model, mtrec.models.CrossStitch) and model.stitch_diagonal == 0.8
    with pytest.raises(ConfigError) as caught:
        parse_config(run_config(column_units=[], expert_units=[4]))
    problems = " ".join(caught.value.problems)
    assert "model.args.column_units" in problems and "expert_units" in problems


def test_modality_experts_is_refused(schema):
    with pytest.raises(ValueError, match="supports fusion in \\['concat', 'gated'\\]"):
        mtrec.models.CrossStitch(schema, fusion="modality_experts")
    assert mtrec.models.CrossStitch(schema, fusion="gated").fusion == "gated"


@pytest.mark.slow
def test_saved_model_parity(masked, table, schema, tmp_path):
    keras.utils.set_random_seed(0)
    model = mtrec.models.CrossStitch(schema, column_units=[8, 4], batch_norm=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(mtrec.data.from_pandas(masked, schema, batch_size=100), epochs=1, verbose=0)
    assert_saved_model_parity(model, schema.raw_features(table.head(8)), tmp_path)
