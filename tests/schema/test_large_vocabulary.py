"""A categorical with a million ids trains by hashing: no Python-side
vocabulary, a schema of a few bytes, unseen ids served."""

import json

import keras
import numpy as np
import pandas as pd

import mtrec
from mtrec.schema import Categorical, Numeric


def test_a_million_hashed_ids_train_and_serve_without_a_vocabulary():
    rng = np.random.default_rng(0)
    rows = 1_000_000
    users = rng.permutation(rows).astype("int64") * 7 + 10_000_000   # all distinct
    x = rng.normal(size=rows).astype("float32")
    frame = pd.DataFrame({"user": users, "x": x,
                          "click": (x + rng.normal(size=rows) > 0).astype("float32")})
    schema = mtrec.Schema([Categorical("user", dtype="int64", embedding_dim=4,
                                       num_hash_bins=2 ** 16), Numeric("x")],
                          tasks={"click": "binary"})
    schema.adapt(frame)
    assert len(schema.to_json()) < 2_000            # no vocabulary stored
    assert json.loads(schema.to_json())["stats"]["user"] == {"num_hash_bins": 65536}
    model = mtrec.models.SharedBottom(schema, bottom_units=[8], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    table = next(layer for layer in model._flatten_layers()
                 if isinstance(layer, keras.layers.Embedding))
    assert table.input_dim <= 2 ** 16 + 1           # bins, not ids
    history = model.fit(frame.iloc[:200_000], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    unseen = pd.DataFrame({"user": np.array([-5, 3, 2 ** 40], dtype="int64"),
                           "x": np.zeros(3, "float32")})
    predictions = model.predict(unseen, verbose=0)["click"]
    assert predictions.shape[0] == 3 and np.isfinite(predictions).all()
