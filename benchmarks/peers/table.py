"""The peers table: medians over seeds per (library, model), and mtrec's ratios.

Read by `run.py` (prints it) and `benchmarks/report.py` (writes it into
RESULTS.md); plain Python, so both can import it.
"""

from __future__ import annotations

import statistics

LIBRARIES = ("mtrec", "deepctr", "deepctr-reseeded", "torch-rechub", "mtrec-spe16",
             "deepctr-reseeded-spe16")
#: (mtrec variant, peer) pairs of the ratio table: as shipped against every
#: peer (DeepCTR at 16 steps per execution too: mtrec's "auto" default runs up
#: to 16), and mtrec forced to 16 against DeepCTR with the same setting.
PAIRS = tuple(("mtrec", peer) for peer in ("deepctr", "deepctr-reseeded",
                                           "deepctr-reseeded-spe16", "torch-rechub")) + (
    ("mtrec-spe16", "deepctr-reseeded-spe16"),)
MODELS = ("SharedBottom", "MMoE", "PLE")
# The issue-12 goal: mtrec trains >= 2x DeepCTR's examples/s at a test AUC
# no worse than DeepCTR's mean - 0.001, adding no more memory in training.
GOAL_TRAIN_RATIO = 2.0
GOAL_AUC_MARGIN = 0.001
GOAL_PEERS = ("deepctr", "deepctr-reseeded", "deepctr-reseeded-spe16")

# What still differs between the libraries' configurations and cannot be
# removed through their public APIs (what the APIs allow is matched in the
# runners: embedding width and init, regularisation, dropout, Adam's
# learning rate / eps / weight decay, batch size, early stopping).
CONFIG_DIFFERENCES = [
    "Dense kernel initialisers: mtrec glorot-uniform (Keras' default), DeepCTR "
    "glorot-normal (its DNN takes no initializer), torch-rechub torch's nn.Linear "
    "default (uniform in ±1/sqrt(fan_in), kaiming-uniform with a=sqrt(5)); hidden "
    "biases start at zero in mtrec and DeepCTR, uniform in ±1/sqrt(fan_in) in "
    "torch-rechub.",
    "DeepCTR passes one seed to every DNN block, so experts of one shape and the "
    "towers start from bit-identical kernels (`identical_kernels_before` in each "
    "record); `deepctr-reseeded` re-draws every DNN and gate kernel with its own "
    "seed (same initialisers) after building. Both are reported.",
    "torch-rechub's MLP puts BatchNorm1d after every Linear layer (bottom, experts, "
    "towers, and the gates: Linear -> BatchNorm -> softmax); it cannot be turned "
    "off. mtrec and DeepCTR (dnn_use_bn=False, its default) use none.",
    "Gates: one softmax layer in all three, with a bias in mtrec, without one in "
    "DeepCTR (Dense(use_bias=False)), with a bias and the BatchNorm above in "
    "torch-rechub.",
    "Parameter counts therefore differ a little at the same sizes: MMoE +16 in mtrec "
    "(gate biases); PLE +576 in mtrec, whose task gates keep one logit per expert of "
    "the level with the other tasks' experts masked out (those logits never receive "
    "a gradient), plus gate biases; torch-rechub + BatchNorm scales and shifts.",
    "Training loss: mtrec and DeepCTR (Keras) sum the two tasks' binary "
    "cross-entropies; torch-rechub's MTLTrainer averages them (half the "
    "gradient; with Adam that only shifts the effect of eps).",
    "Validation AUC for early stopping: Keras' streaming AUC (200 thresholds) in "
    "mtrec and DeepCTR, scikit-learn's exact roc_auc_score in torch-rechub. Test "
    "AUC is scikit-learn's for all.",
    "Input pipelines are each library's own: mtrec `from_pandas` (tf.data, whole "
    "batches gathered by index), DeepCTR numpy arrays through tf.keras 2's data "
    "adapter (one model input per feature), torch-rechub's DataGenerator (a torch "
    "DataLoader collating a dict of 45 columns row by row).",
    "Embedding tables: mtrec keeps one table for all 31 categoricals (same width), "
    "the peers one per feature; same rows, ids and init distribution.",
    "Numerics enter the same way in all three: the 7 standardised values and their "
    "7 missing indicators (constant 0 on Census) concatenated to the embeddings.",
    "Data in memory: the mtrec runner starts from mtrec's loader (pandas frames, "
    "then `from_pandas`), the peers from the prepared .npz arrays, so 'RSS after "
    "imports + data' holds different things; 'memory training adds' (peak - that) "
    "compares training alone.",
    "Shuffling uses each framework's own generator, so batches differ in order "
    "between libraries (same rows, same batch size).",
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarize(runs):
    """Medians over seeds per (library, model).

    Args:
        runs: list of runner results (see `protocol.result`).

    Returns:
        `{(library, model): {"n", "seeds", "epochs", "income_auc",
        "marital_auc" (medians), "income_auc_mean", "marital_auc_mean",
        "train_examples_per_s", "predict_examples_per_s",
        "rss_after_data_mb", "peak_rss_mb", "memory_added_mb" (medians),
        "parameters"}}`.
    """
    groups = {}
    for run in runs:
        groups.setdefault((run["library"], run["model"]), []).append(run)
    out = {}
    for key, group in groups.items():
        added = [r["peak_rss_mb"] - r["rss_after_data_mb"] for r in group]
        out[key] = {
            "n": len(group), "seeds": sorted(r["seed"] for r in group),
            "epochs": [r["epochs_run"] for r in sorted(group, key=lambda r: r["seed"])],
            "income_auc": median(r["test_auc"]["income"] for r in group),
            "marital_auc": median(r["test_auc"]["marital"] for r in group),
            "income_auc_mean": mean(r["test_auc"]["income"] for r in group),
            "marital_auc_mean": mean(r["test_auc"]["marital"] for r in group),
            "train_examples_per_s": median(r["train_examples_per_s"] for r in group),
            "predict_examples_per_s": median(r["predict_examples_per_s"] for r in group),
            "rss_after_data_mb": median(r["rss_after_data_mb"] for r in group),
            "peak_rss_mb": median(r["peak_rss_mb"] for r in group),
            "memory_added_mb": median(added),
            "parameters": group[0]["parameters"],
        }
    return out


def ratios(summary):
    """mtrec against each peer, per model.

    Returns:
        list of dicts `{"model", "peer", "train", "predict", "memory_added"
        (mtrec / peer, of the medians), "income_auc_gap" (mtrec mean - peer
        mean), "goal" (True/False for the DeepCTR variants, None otherwise)}`.
    """
    rows = []
    for model in MODELS:
        for mine, peer in PAIRS:
            ours, theirs = summary.get((mine, model)), summary.get((peer, model))
            if ours is None or theirs is None:
                continue
            row = {"model": model, "peer": peer, "mtrec": mine,
                   "train": _ratio(ours["train_examples_per_s"],
                                   theirs["train_examples_per_s"]),
                   "predict": _ratio(ours["predict_examples_per_s"],
                                     theirs["predict_examples_per_s"]),
                   "memory_added": _ratio(ours["memory_added_mb"],
                                          theirs["memory_added_mb"]),
                   "income_auc_gap": ours["income_auc_mean"] - theirs["income_auc_mean"],
                   "marital_auc_gap": ours["marital_auc_mean"] - theirs["marital_auc_mean"]}
            row["goal"] = (row["train"] >= GOAL_TRAIN_RATIO
                           and row["income_auc_gap"] >= -GOAL_AUC_MARGIN
                           and row["memory_added"] <= 1.0) if peer in GOAL_PEERS else None
            rows.append(row)
    return rows


def _ratio(a, b):
    return float("nan") if not b else a / b


def _order(key):
    library, model = key
    return (MODELS.index(model) if model in MODELS else len(MODELS), model,
            LIBRARIES.index(library) if library in LIBRARIES else len(LIBRARIES), library)


def markdown(runs):
    """The two Markdown tables (per library and model; mtrec's ratios) as lines."""
    summary = summarize(runs)
    lines = ["| model | library | seeds | epochs | params | income AUC | marital AUC "
             "| train ex/s | predict ex/s | RSS after imports+data MB | peak RSS in training MB "
             "| memory training adds MB |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(summary, key=_order):
        s = summary[key]
        lines.append(
            f"| {key[1]} | {key[0]} | {s['n']} | {', '.join(map(str, s['epochs']))} | "
            f"{s['parameters']:,} | {s['income_auc']:.4f} | {s['marital_auc']:.4f} | "
            f"{s['train_examples_per_s']:,.0f} | {s['predict_examples_per_s']:,.0f} | "
            f"{s['rss_after_data_mb']:,.0f} | {s['peak_rss_mb']:,.0f} | "
            f"{s['memory_added_mb']:,.0f} |")
    rows = ratios(summary)
    if rows:
        lines += ["", "| model | mtrec vs | train ex/s ratio | predict ex/s ratio "
                      "| memory-added ratio | income AUC gap (means) "
                      "| marital AUC gap (means) | goal met |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            goal = "—" if r["goal"] is None else ("yes" if r["goal"] else "no")
            vs = r["peer"] if r["mtrec"] == "mtrec" else f"{r['peer']} ({r['mtrec']})"
            lines.append(f"| {r['model']} | {vs} | {r['train']:.2f} | "
                         f"{r['predict']:.2f} | {r['memory_added']:.2f} | "
                         f"{r['income_auc_gap']:+.4f} | {r['marital_auc_gap']:+.4f} | "
                         f"{goal} |")
    return lines
