"""A tiny trained MMoE shared by the evaluation and gate diagnostic tests."""

import keras
import pytest

import mtrec


@pytest.fixture(scope="session")
def trained_mmoe(table, schema):
    """MMoE with 2 experts, trained one epoch on the fixture table.

    Tests must not change its weights (build their own model to do that).
    """
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=1, verbose=0)
    return model
