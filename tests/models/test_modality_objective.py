"""The objective's other terms on a model: modality losses (logged, masked,
saved, absent from serving), explicit L2 (`embedding_l2`, `kernel_l2`), and
imputing a missing modality from its reconstruction head."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from helpers import assert_saved_model_parity
from mtrec.experiments.config import ConfigError, parse_config
from mtrec.models import MMoE, SharedBottom, SingleTask

SMALL = dict(num_experts=2, expert_units=[4], tower_units=[4])
LOSSES = [{"kind": "reconstruction", "modality": "text", "weight": 0.1, "loss": "cosine"},
          {"kind": "alignment", "modalities": ["text", "tabular"], "weight": 0.1,
           "temperature": 0.1, "learn_temperature": True}]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    rows = 200
    words = ["soft", "tight", "lovely", "cheap", "fits", "great"]
    color = rng.choice(["red", "green", "blue"], rows)
    return pd.DataFrame({
        "color": color,
        "num": rng.normal(size=rows).astype("float32"),
        # every 4th title empty: a missing text
        "title": ["" if i % 4 == 0 else " ".join(rng.choice(words, 3)) for i in range(rows)],
        "vec": [None if i % 5 == 0 else rng.normal(size=3).astype("float32")
                for i in range(rows)],
        "click": (color == "red").astype("int64"),
        "spend": rng.normal(size=rows),
    })


@pytest.fixture(scope="module")
def schema(frame):
    return mtrec.Schema(
        [mtrec.Categorical("color", embedding_dim=3), mtrec.Numeric("num"),
         mtrec.Text("title", embedding_dim=4), mtrec.Vector("vec", projection_dim=3)],
        {"click": "binary", "spend": "regression"}).adapt(frame)


@pytest.fixture(scope="module")
def raw(schema, frame):
    return schema.raw_features(frame.head(8))


@pytest.fixture(scope="module")
def fitted(schema, frame):
    """An MMoE with both losses, Omega, modality dropout and imputed text
    (gated fusion: the reconstruction reads the gate's fusion), fit 1 epoch."""
    keras.utils.set_random_seed(0)
    model = MMoE(schema, modality_dropout=0.3, modality_losses=LOSSES, embedding_l2=1e-4,
                 kernel_l2=1e-3, impute_missing=["text"], fusion="gated", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    data = mtrec.data.from_pandas(frame, schema, batch_size=64)
    history = model.fit(data, validation_data=data, epochs=1, verbose=0)
    return model, history.history


def outputs(model, features, training=False):
    return {k: np.asarray(v) for k, v in model(features, training=training).items()}


#: rows of `raw` with a title (rows 0 and 4 have none)
HAS_TITLE = np.arange(8) % 4 != 0


# -- logs, saving, serving ------------------------------------------------------------
def test_history_has_each_modality_loss_and_omega(fitted):
    _, history = fitted
    for key in ("text_reconstruction_loss", "text_tabular_alignment_loss",
                "regularization_loss"):
        assert np.isfinite(history[key]).all() and history[key][0] > 0
        assert np.isfinite(history[f"val_{key}"]).all()
    # the total includes them: more than the task losses alone
    assert history["loss"][0] > history["click_loss"][0] + history["spend_loss"][0]


def test_keras_round_trip_keeps_the_specs(fitted, raw, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.modality_losses == model.modality_losses
    assert again.modality_losses[1]["learn_temperature"] is True
    assert (again.embedding_l2, again.kernel_l2) == (1e-4, 1e-3)
    assert again.impute_missing == ["text"]
    np.testing.assert_array_equal(again.modality_loss_heads.log_temperatures[0].numpy(),
                                  model.modality_loss_heads.log_temperatures[0].numpy())
    expected, actual = outputs(model, raw), outputs(again, raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])
    np.testing.assert_allclose(float(again.regularization_loss()),
                               float(model.regularization_loss()), rtol=1e-6)


def test_inference_ignores_the_losses_and_imputes_absent_text(fitted, schema, frame, raw):
    """A model without the losses (nor imputation) but with the same weights
    predicts the same where the title is present, and differently where it
    is absent (the reconstruction head's output instead of the learned
    missing embedding)."""
    model, _ = fitted
    plain = MMoE(schema, modality_dropout=0.3, fusion="gated", **SMALL)
    heads = {id(v) for v in model.modality_loss_heads.weights}
    plain.set_weights([v.numpy() for v in model.weights if id(v) not in heads])
    expected, actual = outputs(model, raw), outputs(plain, raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task][HAS_TITLE], expected[task][HAS_TITLE])
        assert not np.allclose(actual[task][~HAS_TITLE], expected[task][~HAS_TITLE])
    # a request where no row has a title
    without = schema.raw_features(frame.head(8).assign(title=""))
    assert not np.allclose(outputs(model, without)["spend"],
                           outputs(plain, without)["spend"])
    # with impute_missing off, the same model is the plain one
    unimputed = MMoE.from_config({**model.get_config(), "impute_missing": []})
    unimputed.set_weights(model.get_weights())
    for task, values in outputs(unimputed, raw).items():
        np.testing.assert_array_equal(values, actual[task])


def test_saved_model_parity_and_only_task_outputs(fitted, raw, tmp_path):
    """One request with rows with and without a title (imputed)."""
    model, _ = fitted
    assert not HAS_TITLE.all() and HAS_TITLE.any()
    assert_saved_model_parity(model, raw, tmp_path)
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    assert set(serve.structured_outputs) == {"click", "spend"}


def test_each_batch_is_embedded_once(schema, frame, monkeypatch):
    """Eagerly, fit (with validation) and evaluate call the feature
    embedding once per batch, the val_ modality losses included; the
    reconstruction sources are built once per batch too (gated fusion: a
    "fused" source is a fusion call)."""
    keras.utils.set_random_seed(0)
    model = MMoE(schema, modality_losses=LOSSES, impute_missing=["text"], fusion="gated",
                 **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
    calls = {"embedding": 0, "sources": 0}

    def counted(key, function):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(model.embedding, "call", counted("embedding", model.embedding.call))
    monkeypatch.setattr(model, "reconstruction_sources",
                        counted("sources", model.reconstruction_sources))
    data = mtrec.data.from_pandas(frame, schema, batch_size=100)  # 2 batches
    history = model.fit(data, validation_data=data, epochs=1, verbose=0).history
    assert calls == {"embedding": 2 + 2, "sources": 2 + 2}
    assert history["val_text_reconstruction_loss"][0] > 0
    model.evaluate(data, verbose=0)
    assert calls == {"embedding": 6, "sources": 6}
    model.predict(data, verbose=0)
    assert calls == {"embedding": 8, "sources": 8}
    assert not model.in_test_step()


@pytest.mark.parametrize("impute", [[], ["text"]])
def test_the_served_graph_computes_only_what_it_serves(schema, monkeypatch, impute):
    """Tracing the inference call (as the export does), with two
    reconstructions and an alignment under gated fusion: no loss, no
    alignment projection; the reconstruction head and its "fused" source
    (a second fusion call) of the imputed modality only."""
    from mtrec.export import raw_input_signature
    losses = [LOSSES[0], {"kind": "reconstruction", "modality": "image"}, LOSSES[1]]
    model = MMoE(schema, modality_losses=losses, impute_missing=impute, fusion="gated",
                 **SMALL)
    heads = model.modality_loss_heads
    calls = {}

    def spy(layer, key):
        function = layer.call

        def wrapper(*args, **kwargs):
            calls[key] = calls.get(key, 0) + 1
            return function(*args, **kwargs)
        monkeypatch.setattr(layer, "call", wrapper)

    spy(model.embedding, "embedding")
    spy(model.modality_fusion, "fusion")
    spy(heads, "losses")
    for layer in [*heads.heads, *heads.projections]:
        spy(layer, layer.name)
    tf.function(lambda x: model(x, training=False)).get_concrete_function(
        raw_input_signature(schema))
    expected = {"embedding": 1, "fusion": 1 + len(impute)}
    if impute:
        expected["reconstruct_text"] = 1
    assert calls == expected
    # a training call computes all of them, each head once (the imputed
    # modality's prediction serves its loss and the imputation)
    calls.clear()
    model(schema.raw_features(pd.DataFrame({"color": ["red"] * 4, "num": [0.0] * 4,
                                            "title": ["soft fits"] * 4,
                                            "vec": [np.ones(3, "float32")] * 4})),
          training=True)
    assert calls == {"embedding": 1, "fusion": 3, "losses": 1,
                     "reconstruct_text": 1,
                     "reconstruct_image": 1, "align_text_tabular_text": 1,
                     "align_text_tabular_tabular": 1}


def test_val_modality_losses_are_those_of_the_validation_data(fitted, schema, frame):
    """`evaluate`'s modality losses are the batch-size weighted means of
    the heads' values on the inference-mode groups, computed by hand."""
    model, _ = fitted
    data = mtrec.data.from_pandas(frame, schema, batch_size=64)
    logs = model.evaluate(data, verbose=0, return_dict=True)
    totals, count = {}, 0
    for features, *_ in data:
        groups, present = model.embedding(features, grouped=True, return_present=True)
        values = model.modality_loss_heads(groups, present,
                                           model.reconstruction_sources(groups))
        size = int(groups[0].shape[0])
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + size * float(value)
        count += size
    assert set(totals) == {"text_reconstruction_loss", "text_tabular_alignment_loss"}
    for key, total in totals.items():
        assert logs[key] == pytest.approx(total / count, rel=1e-5)


def test_a_file_saved_before_loads_with_the_defaults():
    from pathlib import Path
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_0_1_0"
    model = keras.saving.load_model(fixture / "mmoe_modality_experts.keras")
    assert model.modality_losses == [] and model.modality_loss_heads is None
    assert (model.embedding_l2, model.kernel_l2, model.impute_missing) == (0.0, 0.0, [])
    assert model.losses == [] and model.regularization_tracker is None


# -- masks ----------------------------------------------------------------------------
def test_presence_follows_missing_and_dropped(schema, frame):
    model = MMoE(schema, modality_dropout=0.5, **SMALL)
    encoded = mtrec.data.encode_features(schema, schema.raw_features(frame.head(20)))
    groups, present = model.embedding(encoded, grouped=True, return_present=True)
    assert list(present) == ["tabular", "text", "image"]
    np.testing.assert_array_equal(np.asarray(present["text"]), np.arange(20) % 4 != 0)
    np.testing.assert_array_equal(np.asarray(present["image"]), np.arange(20) % 5 != 0)
    assert np.asarray(present["tabular"]).all()
    # the grouped output is unchanged by the flag, and ungroup() restores
    # the plain output's column order
    plain = np.asarray(model.embedding(encoded))
    np.testing.assert_array_equal(np.asarray(model.embedding.ungroup(groups)), plain)
    # dropped by modality dropout: absent, with the missing embedding
    keras.utils.set_random_seed(3)
    groups, present = model.embedding(encoded, training=True, grouped=True,
                                      return_present=True)
    text, present_text = np.asarray(groups[1]), np.asarray(present["text"])
    dropped = (np.arange(20) % 4 != 0) & ~present_text
    assert dropped.any()
    missing = np.asarray(model.embedding.text_encoders[0].missing)
    assert all(np.array_equal(text[i], missing) for i in np.flatnonzero(~present_text))


def test_absent_text_contributes_nothing(schema, frame):
    """Changing the titles of the examples without a title (to other empty
    forms) or of dropped examples leaves the losses as they are; a batch
    with one present title has alignment loss 0."""
    model = MMoE(schema, modality_losses=LOSSES, **SMALL)
    heads = model.modality_loss_heads

    def losses(df):
        encoded = mtrec.data.encode_features(schema, schema.raw_features(df))
        groups, present = model.embedding(encoded, grouped=True, return_present=True)
        values = heads(groups, present, model.reconstruction_sources(groups))
        return {k: float(v) for k, v in values.items()}

    rows = frame.head(16).copy()
    before = losses(rows)
    # a training call adds their weighted sum (concat fusion: the groups
    # are put back in the embedding's column order)
    model(schema.raw_features(rows), training=True)
    assert len(model.losses) == 1 and float(model.losses[0]) > 0
    assert before["text_reconstruction_loss"] > 0
    # missing rows: "" -> punctuation only / None, still without tokens
    rows.loc[rows.index % 8 == 0, "title"] = "!!!"
    rows.loc[rows.index % 8 == 4, "title"] = None
    assert losses(rows) == before
    one = frame.head(16).copy()
    one["title"] = [""] * 15 + ["soft fits"]
    assert losses(one)["text_tabular_alignment_loss"] == 0.0


# -- Omega ----------------------------------------------------------------------------
def test_zero_coefficients_change_nothing(schema, raw):
    keras.utils.set_random_seed(5)
    base = MMoE(schema, **SMALL)
    keras.utils.set_random_seed(5)
    zero = MMoE(schema, embedding_l2=0.0, kernel_l2=0.0, **SMALL)
    assert zero.regularization_tracker is None and zero.losses == base.losses == []
    assert all(v.regularizer is None for v in zero.weights)
    expected, actual = outputs(base, raw), outputs(zero, raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])
    assert [w.path.split("/", 1)[1] for w in zero.weights] == [
        w.path.split("/", 1)[1] for w in base.weights]


def test_regularization_loss_is_the_hand_sum(schema, frame):
    model = SharedBottom(schema, bottom_units=[4], tower_units=[3], embedding_l2=0.01,
                         kernel_l2=0.1)
    tables, kernels = model.regularized_variables()
    assert sorted(v.path.split("/", 1)[1] for v in tables) == [
        "embedding/categorical_3/embeddings", "embedding/text_0/tokens/embeddings"]
    assert sorted(v.path.split("/", 1)[1] for v in kernels) == [
        "shared_bottom/mlp/dense_0/kernel", "towers/head_click/kernel",
        "towers/head_spend/kernel", "towers/tower_click/dense_0/kernel",
        "towers/tower_spend/dense_0/kernel"]

    def squares(variables):
        return sum(float(np.sum(np.square(v.numpy()))) for v in variables)

    expected = 0.01 * squares(tables) + 0.1 * squares(kernels)
    np.testing.assert_allclose(float(model.regularization_loss()), expected, rtol=1e-5)
    # Keras adds it to the loss: model.losses holds one term per variable
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)
    # logged as regularization_loss (a learning rate of 0 keeps the weights)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    history = model.fit(mtrec.data.from_pandas(frame, schema, batch_size=100), epochs=1,
                        verbose=0).history
    np.testing.assert_allclose(history["regularization_loss"][0], expected, rtol=1e-5)
    # and in the total
    assert history["loss"][0] == pytest.approx(
        history["click_loss"][0] + history["spend_loss"][0] + expected, rel=1e-4)


def test_single_task_regularizes_every_task_embedding(schema):
    model = SingleTask(schema, bottom_units=[4], tower_units=[3], embedding_l2=0.5)
    tables, _ = model.regularized_variables()
    assert len(tables) == 2 * len(model.embedding.embedding_tables())
    with pytest.raises(ValueError, match="SingleTask embeds the features its own way"):
        SingleTask(schema, modality_losses=LOSSES[:1])


# -- imputation -----------------------------------------------------------------------
def test_imputation_errors(schema):
    with pytest.raises(ValueError, match="add {kind: reconstruction, modality: text}"):
        MMoE(schema, modality_losses=LOSSES[1:], impute_missing=["text"], **SMALL)
    with pytest.raises(ValueError, match=r"only a modality with Text or Vector .*"
                                         r"\['text', 'image'\]"):
        MMoE(schema, modality_losses=[{"kind": "reconstruction", "modality": "tabular"}],
             impute_missing=["tabular"], **SMALL)
    with pytest.raises(ValueError, match="modality 'audio', but the schema's modality "
                                         "groups are"):
        MMoE(schema, modality_losses=[{"kind": "reconstruction", "modality": "audio"}],
             **SMALL)


def test_one_modality_schema_is_refused(frame):
    tabular = mtrec.Schema([mtrec.Categorical("color"), mtrec.Numeric("num")],
                           {"click": "binary"}).adapt(frame)
    with pytest.raises(ValueError, match=r"only the modality group \['tabular'\]"):
        MMoE(tabular, modality_losses=[{"kind": "reconstruction", "modality": "tabular"}],
             **SMALL)


# -- run configs ----------------------------------------------------------------------
def test_run_config_takes_the_objective():
    base = {"dataset": {"name": "synthetic_tiny"}}
    args = {"modality_dropout": 0.3, "modality_losses": LOSSES, "embedding_l2": 1e-6,
            "kernel_l2": 1e-5, "impute_missing": ["text"]}
    config = parse_config({**base, "model": {"name": "MMoE", "args": args}})
    assert config.model.args["modality_losses"] == LOSSES
    with pytest.raises(ConfigError, match=r"modality_losses: modality_losses\[0\] has "
                                          r"kind 'contrast'"):
        parse_config({**base, "model": {"name": "MMoE", "args": {
            "modality_losses": [{"kind": "contrast"}]}}})
    with pytest.raises(ConfigError, match="kernel_l2 is -1; an L2 coefficient is >= 0"):
        parse_config({**base, "model": {"name": "PLE", "args": {"kernel_l2": -1}}})


@pytest.mark.slow  # trains, exports and serves a SavedModel (10-22 s here)
def test_vector_only_modality_is_imputed_alike_in_every_signature(frame, tmp_path):
    """A text modality made of one precomputed Vector (no Text feature),
    imputed: Keras, `serving_default` (NaN vector) and `serving_tf_example`
    (the key absent from the proto) predict the same, rows with and without
    the vector in one request; the absent rows are imputed (they differ
    from the same weights without imputation)."""
    from mtrec.export import EXAMPLE_SIGNATURE, serving_input_names, to_tf_examples
    rng = np.random.default_rng(1)
    table = frame[["color", "num", "click", "spend"]].assign(
        text_vec=[None if i % 3 == 0 else rng.normal(size=4).astype("float32")
                  for i in range(len(frame))])
    schema = mtrec.Schema(
        [mtrec.Categorical("color", embedding_dim=3), mtrec.Numeric("num"),
         mtrec.Vector("text_vec", projection_dim=3, modality="text")],
        {"click": "binary", "spend": "regression"}).adapt(table)
    keras.utils.set_random_seed(0)
    model = MMoE(schema, modality_losses=LOSSES[:1], impute_missing=["text"], **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=1, verbose=0)
    rows = table.head(6)
    absent = np.arange(6) % 3 == 0
    raw = schema.raw_features(rows)
    assert np.isnan(raw["text_vec"][absent]).all() and not np.isnan(raw["text_vec"][~absent]).any()
    expected = {k: np.asarray(v) for k, v in model.predict_on_batch(raw).items()}
    unimputed = MMoE.from_config({**model.get_config(), "impute_missing": []})
    unimputed.set_weights(model.get_weights())
    plain = {k: np.asarray(v) for k, v in unimputed.predict_on_batch(raw).items()}
    for task in expected:
        np.testing.assert_array_equal(plain[task][~absent], expected[task][~absent])
        assert not np.allclose(plain[task][absent], expected[task][absent])

    mtrec.export.saved_model(model, tmp_path / "export")
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    names = serving_input_names(schema)
    served = loaded.signatures["serving_default"](
        **{names[k]: tf.constant(v.astype(str) if v.dtype == object else v)
           for k, v in raw.items()})
    protos = to_tf_examples(schema, rows)
    assert all(names["text_vec"] not in tf.train.Example.FromString(protos[i])
               .features.feature for i in np.flatnonzero(absent))
    by_example = loaded.signatures[EXAMPLE_SIGNATURE](examples=tf.constant(protos))
    # one request of absent rows only, as tf.Examples without the key
    only_absent = loaded.signatures[EXAMPLE_SIGNATURE](
        examples=tf.constant([protos[i] for i in np.flatnonzero(absent)]))
    for task in expected:
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-6, rtol=0)
        np.testing.assert_allclose(by_example[task].numpy(), expected[task], atol=1e-6,
                                   rtol=0)
        np.testing.assert_allclose(only_absent[task].numpy(), expected[task][absent],
                                   atol=1e-6, rtol=0)
