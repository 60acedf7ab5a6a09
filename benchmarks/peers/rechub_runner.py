"""One peers-benchmark run of torch-rechub 0.9.0 (torch, CPU): a model, a seed.

Runs in `.venv-peers/rechub`. Builds `torch_rechub.models.multi_task`'s
SharedBottom / MMOE / PLE over the prepared arrays: one `SparseFeature`
per categorical (8-dim, vocabulary = mtrec's cardinality, embeddings drawn
uniform in [-0.05, 0.05] as Keras' `Embedding` default that mtrec uses;
torch-rechub's default is normal(0, 1e-4)) and one `DenseFeature` per float
column, batches from torch-rechub's `DataGenerator` (a torch `DataLoader`
over a dict of arrays, 1024 rows, shuffled each epoch), and trains with its
`MTLTrainer` (Adam, lr 1e-3, weight decay 0 instead of its default 1e-5,
eps 1e-7 as Keras'): `train_one_epoch` per epoch, then `evaluate` on the
validation split (roc_auc_score per task). Early stopping uses the
trainer's own `EarlyStopper` on the mean of the two validation AUCs
(`MTLTrainer.fit` watches one task only; driving its public epoch and
evaluate methods keeps the selection the same as the other libraries'),
and the best epoch's weights are restored at the end, also when the epoch
budget runs out (`fit` restores them only when it stops early).

Timed as in every runner: each `train_one_epoch` call (the first left out
of examples/s) and `MTLTrainer.predict` over the test split after a
one-batch warm-up. `torch.set_num_threads` and `set_num_interop_threads`
take `--threads`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol  # noqa: E402  (benchmarks/peers/protocol.py)

# torch-rechub's loops wrap every DataLoader in a tqdm bar; off, so that
# stderr holds the log and not progress bars.
os.environ.setdefault("TQDM_DISABLE", "1")


def feature_columns(manifest):
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.basic.initializers import RandomUniform

    sparse = [SparseFeature(f["name"], vocab_size=f["cardinality"],
                            embed_dim=protocol.EMBEDDING_DIM,
                            initializer=RandomUniform(-0.05, 0.05))
              for f in manifest["categorical"]]
    return sparse + [DenseFeature(name) for name in manifest["floats"]]


def inputs(manifest, split):
    """torch-rechub's input dict `{feature name: (rows,) array}` and labels
    `(rows, num_tasks)`."""
    x = {f["name"]: split["ids"][:, i] for i, f in enumerate(manifest["categorical"])}
    x.update({name: split["floats"][:, j] for j, name in enumerate(manifest["floats"])})
    return x, np.stack([split[task] for task in protocol.TASKS], axis=1)


def build_model(name, features, num_experts=protocol.NUM_EXPERTS):
    from torch_rechub.models.multi_task import MMOE, PLE, SharedBottom

    task_types = ["classification"] * len(protocol.TASKS)
    towers = [{"dims": protocol.TOWER_UNITS} for _ in protocol.TASKS]
    if name == "SharedBottom":
        return SharedBottom(features, task_types, bottom_params={"dims": protocol.BOTTOM_UNITS},
                            tower_params_list=towers)
    if name == "MMoE":
        return MMOE(features, task_types, n_expert=num_experts,
                    expert_params={"dims": protocol.EXPERT_UNITS}, tower_params_list=towers)
    return PLE(features, task_types, n_level=protocol.NUM_LEVELS,
               n_expert_specific=protocol.NUM_SPECIFIC_EXPERTS,
               n_expert_shared=protocol.NUM_SHARED_EXPERTS,
               expert_params={"dims": protocol.EXPERT_UNITS}, tower_params_list=towers)


def main(argv=None):
    args = protocol.runner_arguments(__doc__.split("\n\n")[0]).parse_args(argv)
    import random
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    from torch.utils.data import DataLoader
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator, PredictDataset

    manifest, (train_x, train_y), (valid_x, valid_y), test_x, test_labels = (
        protocol.load_inputs(args.data, inputs))
    train_loader, valid_loader, _ = DataGenerator(train_x, train_y).generate_dataloader(
        x_val=valid_x, y_val=valid_y, x_test=valid_x, y_test=valid_y,
        batch_size=args.batch_size)
    test_loader = DataLoader(PredictDataset(test_x), batch_size=protocol.PREDICT_BATCH_SIZE,
                             shuffle=False)
    memory = protocol.data_loaded()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_model(args.model, feature_columns(manifest), args.num_experts)
    with tempfile.TemporaryDirectory() as model_path:
        trainer = MTLTrainer(model, task_types=["classification"] * len(protocol.TASKS),
                             optimizer_params={"lr": protocol.LEARNING_RATE,
                                               "weight_decay": 0.0, "eps": 1e-7},
                             n_epoch=args.max_epochs, earlystop_patience=args.patience,
                             device="cpu", model_path=model_path)
        epoch_seconds, best_epoch, best_score = [], 0, None
        for epoch in range(args.max_epochs):
            with protocol.Stopwatch() as clock:
                trainer.train_one_epoch(train_loader)
            epoch_seconds.append(clock.seconds)
            score = float(np.mean(trainer.evaluate(trainer.model, valid_loader)))
            if best_score is None or score > best_score:
                best_epoch, best_score = epoch + 1, score
            if trainer.early_stopper.stop_training(score, trainer.model.state_dict()):
                break
        trainer.model.load_state_dict(trainer.early_stopper.best_weights)

        warm = DataLoader(PredictDataset({k: v[:protocol.PREDICT_BATCH_SIZE]
                                          for k, v in test_x.items()}),
                          batch_size=protocol.PREDICT_BATCH_SIZE)
        trainer.predict(trainer.model, warm)
        with protocol.Stopwatch() as clock:
            outputs = np.asarray(trainer.predict(trainer.model, test_loader))
    predictions = {task: outputs[:, i] for i, task in enumerate(protocol.TASKS)}
    protocol.emit(protocol.result(
        "torch-rechub", args, versions={"torch-rechub": _version("torch-rechub"),
                                        "torch": torch.__version__,
                                        "numpy": np.__version__},
        test_auc_by_task=protocol.test_auc(test_labels, predictions),
        epoch_seconds=epoch_seconds, best_epoch=best_epoch,
        train_rows=len(train_y), predict_rows=len(outputs), predict_seconds=clock.seconds,
        memory=memory,
        parameters=sum(p.numel() for p in trainer.model.parameters())))
    return 0


def _version(distribution):
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    sys.exit(main())
