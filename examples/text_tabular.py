"""Text + tabular side features, end to end, on Women's E-Commerce Clothing Reviews.

    python examples/text_tabular.py [--epochs 2] [--output runs/text_tabular]

Reads `$MTREC_DATA_DIR/womens-clothing-reviews/reviews.parquet` (default
`../shared/data`), predicts two tasks from the same reviews:

- `recommended`: binary, the `Recommended IND` column;
- `rating`: regression on the 1-5 star `Rating`;

from tabular inputs (Age, Division / Department / Class Name, Clothing ID)
and two raw text columns, Title and Review Text, tokenised and encoded
inside the model. MMoE with modality experts (`fusion="modality_experts"`):
the `text_j` experts read the texts plus the tabular features, the
`tabular_j` experts the tabular features alone, and the per-task gates show
how much each task leans on the text. Modality dropout trains the model to
cope with reviews without text (about 1 in 6 has no title, 1 in 28 no
review). Then: test metrics, gate use per modality, a `.keras` file, a
SavedModel, and raw-text requests to the SavedModel, one with empty text.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

import mtrec  # noqa: E402

# The dataset module holds the column mapping (signature inputs cannot hold
# spaces), the tasks and the feature specs: short titles through a one-block
# transformer, long reviews through convolutions with attention pooling.
from mtrec.data import clothing_reviews  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", default="runs/text_tabular")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.time()
    mtrec.training.set_seed(args.seed)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    train, valid, test = clothing_reviews.load(seed=args.seed)
    print(f"Clothing reviews: {len(train)} train / {len(valid)} valid / {len(test)} test; "
          f"no title {train['title'].isna().mean():.1%}, no review "
          f"{train['review'].isna().mean():.1%}")
    schema = mtrec.Schema(clothing_reviews.features(), clothing_reviews.TASKS).adapt(train)
    print(f"{schema}; text vocabularies: " + ", ".join(
        f"{s.name} {len(schema.stats[s.name]['vocabulary'])} tokens x "
        f"{schema.stats[s.name]['max_length']}" for s in schema.features_of("text")))

    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[32], tower_units=[16],
                              fusion="modality_experts", modality_dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    (_, gates, experts), = model.gate_structure()
    print(f"MMoE with modality experts {experts}, gates {gates}: "
          f"{model.count_params():,} parameters")
    train_data = mtrec.data.from_pandas(train, schema, batch_size=256, shuffle=True,
                                        seed=args.seed)
    valid_data = mtrec.data.from_pandas(valid, schema, batch_size=2048)
    fit_start = time.time()
    model.fit(train_data, validation_data=valid_data, epochs=args.epochs, verbose=2)
    fit_seconds = time.time() - fit_start

    report = mtrec.evaluate(model, mtrec.data.from_pandas(test, schema, batch_size=2048))
    print("\nTest set:")
    columns = ["count", "auc", "logloss", "calibration", "positive_rate", "rmse", "mae"]
    with pd.option_context("display.width", 120, "display.precision", 4,
                           "display.max_columns", 20):
        print(report[[c for c in columns if c in report]])
    print(f"(always predicting the training mean rating: RMSE "
          f"{np.sqrt(np.mean((test['rating'] - train['rating'].mean()) ** 2)):.4f})")

    usage = mtrec.evaluation.gates(model, test, collapse_threshold=1.0).usage
    by_modality = usage.T.groupby(lambda expert: expert.rsplit("_", 1)[0]).sum().T
    print("\nMean gate weight per modality group (test set):")
    print(by_modality.droplevel("level").round(3).to_string())

    model.save(output / "mmoe_text.keras")
    # replaces this example's previous export (by a rename, once complete)
    export_dir = mtrec.export.saved_model(model, output / "export" / "mmoe_text",
                                          overwrite=True)
    print(f"\nSaved {output / 'mmoe_text.keras'} and SavedModel {export_dir}")

    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    requests = pd.DataFrame({
        "age": [34.0, 34.0, 58.0],
        "division": ["General", "General", "General Petite"],
        "department": ["Dresses", "Dresses", "Tops"],
        "class_name": ["Dresses", "Dresses", "Knits"],
        "clothing_id": [1078, 1078, 862],
        "title": ["Beautiful dress!", "Returned it", ""],
        "review": [
            "Love this dress, the fabric is soft and it fits perfectly. I get "
            "compliments every time I wear it.",
            "Poor quality, the zipper broke and it runs very small. Very "
            "disappointed, going back.",
            ""],
    })
    raw = schema.raw_features(requests)
    feeds = {name: tf.constant(value.astype(str) if value.dtype == object else value)
             for name, value in raw.items()}
    served = serve(**feeds)
    in_keras = model.predict_on_batch(raw)
    print("Raw requests sent to the SavedModel (strings in, predictions out):")
    for i, row in requests.iterrows():
        text = row["review"][:48] + "..." if row["review"] else "<empty title and review>"
        print(f"  {text!r:<55} recommended={float(served['recommended'][i]):.3f} "
              f"rating={float(served['rating'][i]):.2f}")
    gap = max(float(np.max(np.abs(served[t].numpy() - in_keras[t]))) for t in schema.task_names)
    print(f"max |served - keras| = {gap:.2e}")
    print(f"Training {fit_seconds:.0f} s; whole example {time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
