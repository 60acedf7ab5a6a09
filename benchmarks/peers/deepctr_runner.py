"""One peers-benchmark run of DeepCTR 0.9.4 (tf.keras 2.15): a model, a seed.

Runs in `.venv-peers/deepctr`. Builds `deepctr.models.multitask`'s
SharedBottom / MMOE / PLE over the prepared arrays: one `SparseFeat` per
categorical (8-dim, vocabulary = mtrec's cardinality, embeddings drawn
uniform in [-0.05, 0.05] with a distinct seed per table, as Keras'
`Embedding` default that mtrec uses) and one `DenseFeat` per float column;
`l2_reg_embedding=0` (DeepCTR's default is 1e-5; mtrec has none). Compiled
with Adam(1e-3), binary cross-entropy per task and a Keras AUC per task;
early stopping on their mean over validation (patience 2, best weights
restored at the end, which tf.keras 2.15's EarlyStopping only does when it
stops early).

DeepCTR passes one `seed` to every DNN block, and its DNN draws each
kernel with `glorot_normal(seed)`: experts of the same shape (and the
towers) start bit-identical. `--reseed-blocks` re-draws every DNN kernel
after building with the same initializer and distinct seeds (the library
`deepctr-reseeded`); without it the model is DeepCTR as shipped. The
result counts the bit-identical kernels before and after.

Timed as in every runner: the training pass of each epoch (to the start
of validation; the first epoch left out of examples/s) and `predict` over
the test split after a one-batch warm-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol  # noqa: E402  (benchmarks/peers/protocol.py)


def feature_columns(manifest, seed):
    from deepctr.feature_column import DenseFeat, SparseFeat
    from tensorflow.keras.initializers import RandomUniform

    sparse = [SparseFeat(f["name"], vocabulary_size=f["cardinality"],
                         embedding_dim=protocol.EMBEDDING_DIM,
                         embeddings_initializer=RandomUniform(-0.05, 0.05,
                                                              seed=seed * 1000 + i))
              for i, f in enumerate(manifest["categorical"])]
    dense = [DenseFeat(name, 1) for name in manifest["floats"]]
    return sparse + dense


def inputs(manifest, split):
    """DeepCTR's input dict `{feature name: (rows,) array}` and label list."""
    x = {f["name"]: split["ids"][:, i].astype("int32")
         for i, f in enumerate(manifest["categorical"])}
    x.update({name: split["floats"][:, j] for j, name in enumerate(manifest["floats"])})
    return x, [split[task] for task in protocol.TASKS]


def build_model(name, columns, seed, num_experts=protocol.NUM_EXPERTS):
    from deepctr.models.multitask import MMOE, PLE, SharedBottom

    common = dict(tower_dnn_hidden_units=protocol.TOWER_UNITS, l2_reg_embedding=0.0,
                  seed=seed, task_types=["binary"] * len(protocol.TASKS),
                  task_names=list(protocol.TASKS))
    if name == "SharedBottom":
        return SharedBottom(columns, bottom_dnn_hidden_units=protocol.BOTTOM_UNITS, **common)
    if name == "MMoE":
        return MMOE(columns, num_experts=num_experts,
                    expert_dnn_hidden_units=protocol.EXPERT_UNITS,
                    gate_dnn_hidden_units=(), **common)
    return PLE(columns, shared_expert_num=protocol.NUM_SHARED_EXPERTS,
               specific_expert_num=protocol.NUM_SPECIFIC_EXPERTS,
               num_levels=protocol.NUM_LEVELS, expert_dnn_hidden_units=protocol.EXPERT_UNITS,
               gate_dnn_hidden_units=(), **common)


def block_kernels(model):
    """Every DNN kernel and gate kernel of the model, `{name: variable}`."""
    from deepctr.layers.core import DNN

    kernels = {}
    for layer in model.layers:
        if isinstance(layer, DNN):
            kernels.update({f"{layer.name}/{k.name}": k for k in layer.kernels})
        elif layer.name.startswith("gate_softmax_"):
            kernels[f"{layer.name}/kernel"] = layer.kernel
    return kernels


def identical_kernels(kernels):
    """How many kernels equal (bit for bit) at least one other kernel."""
    seen = {}
    for variable in kernels.values():
        value = variable.numpy()
        key = (value.shape, value.tobytes())
        seen[key] = seen.get(key, 0) + 1
    return sum(count for count in seen.values() if count > 1)


def reseed_blocks(model, seed):
    """Re-draw every DNN kernel with DeepCTR's own initializer (glorot
    normal), one distinct seed per kernel. Gate kernels (plain Dense layers,
    drawn from Keras' global generator) are already distinct; they are
    re-drawn too (glorot uniform, their initializer) so every block has its
    own seed."""
    from deepctr.layers.core import DNN
    from tensorflow.keras.initializers import GlorotNormal, GlorotUniform

    draws = 0
    for layer in model.layers:
        if isinstance(layer, DNN):
            for kernel in layer.kernels:
                kernel.assign(GlorotNormal(seed=seed * 10007 + draws)(kernel.shape))
                draws += 1
        elif layer.name.startswith("gate_softmax_"):
            layer.kernel.assign(GlorotUniform(seed=seed * 10007 + draws)(layer.kernel.shape))
            draws += 1
    return draws


def main(argv=None):
    parser = protocol.runner_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--reseed-blocks", action="store_true",
                        help="re-draw every expert/tower/gate kernel with a distinct seed")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import deepctr
    import sklearn  # noqa: F401  (fail before training, not after, if it is missing)

    manifest, (train_x, train_y), (valid_x, valid_y), test_x, test_labels = (
        protocol.load_inputs(args.data, inputs))
    memory = protocol.data_loaded()

    tf.keras.utils.set_random_seed(args.seed)
    model = build_model(args.model, feature_columns(manifest, args.seed), args.seed,
                        args.num_experts)
    kernels = block_kernels(model)
    identical_before = identical_kernels(kernels)
    redrawn = reseed_blocks(model, args.seed) if args.reseed_blocks else 0
    identical_after = identical_kernels(kernels)
    model.compile(optimizer=tf.keras.optimizers.Adam(protocol.LEARNING_RATE),
                  loss={task: "binary_crossentropy" for task in protocol.TASKS},
                  metrics={task: [tf.keras.metrics.AUC(name="auc")]
                           for task in protocol.TASKS},
                  steps_per_execution=args.steps_per_execution or 1)

    class MeanValidationAUC(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_mean_auc"] = float(np.mean([logs[f"val_{t}_auc"]
                                                  for t in protocol.TASKS]))

    timer = protocol.train_pass_timer(tf.keras.callbacks.Callback)
    stopping = tf.keras.callbacks.EarlyStopping(monitor="val_mean_auc", mode="max",
                                                patience=args.patience,
                                                restore_best_weights=True)
    model.fit(train_x, train_y, batch_size=args.batch_size, epochs=args.max_epochs,
              validation_data=(valid_x, valid_y), shuffle=True, verbose=0,
              callbacks=[timer, MeanValidationAUC(), stopping])
    if stopping.best_weights is not None:
        model.set_weights(stopping.best_weights)

    warm = {k: v[:protocol.PREDICT_BATCH_SIZE] for k, v in test_x.items()}
    model.predict(warm, batch_size=protocol.PREDICT_BATCH_SIZE, verbose=0)
    with protocol.Stopwatch() as clock:
        outputs = model.predict(test_x, batch_size=protocol.PREDICT_BATCH_SIZE, verbose=0)
    predictions = dict(zip(protocol.TASKS, outputs))
    library = "deepctr-reseeded" if args.reseed_blocks else "deepctr"
    protocol.emit(protocol.result(
        library, args, versions={"deepctr": deepctr.__version__,
                                 "tensorflow": tf.__version__, "numpy": np.__version__},
        test_auc_by_task=protocol.test_auc(test_labels, predictions),
        epoch_seconds=timer.epoch_seconds, best_epoch=stopping.best_epoch + 1,
        train_rows=len(train_y[0]), predict_rows=len(test_labels[protocol.TASKS[0]]),
        predict_seconds=clock.seconds, memory=memory,
        parameters=model.count_params(),
        block_kernels=len(kernels), identical_kernels_before=identical_before,
        kernels_redrawn=redrawn, identical_kernels_after=identical_after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
