"""`.keras` files saved by mtrec 0.1.0 still load and predict the same.

The fixtures in tests/fixtures/legacy_0_1_0/ were written once by
tests/fixtures/make_legacy_0_1_0.py at the 0.1.0 release; they name the
layers of that release (`ModalityMixtureOfExperts`, `ModalityPLE`,
`ModalityCGC`, `ModalityExperts`, `PLE`, `CGC`, `SharedBottom`, ...), so
this is where renamed or merged layers prove their aliases work.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import mtrec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_0_1_0"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())["models"]


def _inputs_and_outputs(name):
    with np.load(FIXTURES / f"{name}_io.npz") as io:
        inputs = {key[len("input/"):]: (io[key].astype(object) if io[key].dtype.kind == "U"
                                        else io[key])
                  for key in io.files if key.startswith("input/")}
        outputs = {key[len("output/"):]: io[key]
                   for key in io.files if key.startswith("output/")}
    return inputs, outputs


def test_every_fixture_is_listed():
    on_disk = sorted(path.stem for path in FIXTURES.glob("*.keras"))
    assert on_disk == sorted(MANIFEST)
    assert len(on_disk) >= 9


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_legacy_model_loads_and_predicts_the_same(name):
    model = keras.saving.load_model(FIXTURES / f"{name}.keras")
    assert type(model) is getattr(mtrec.models, MANIFEST[name])
    inputs, expected = _inputs_and_outputs(name)
    predictions = model.predict_on_batch(inputs)
    assert set(predictions) == set(expected)
    for task, value in expected.items():
        np.testing.assert_allclose(np.asarray(predictions[task]), value,
                                   rtol=1e-6, atol=1e-6, err_msg=f"{name}: {task}")


def test_legacy_gradnorm_model_keeps_its_loss_weighting():
    model = keras.saving.load_model(FIXTURES / "mmoe_gradnorm.keras")
    assert type(model.loss_weighting).__name__ == "GradNorm"
