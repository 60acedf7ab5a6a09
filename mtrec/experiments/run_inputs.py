"""Where a training run's rows come from: DataFrames in memory, or streams.

The runner (`mtrec.experiments.runner.train`) asks its input for the same
six things whatever holds the rows, so it has one code path:

- `infer_frame()`: rows to infer the schema on (and check for leakage);
- `adapt(schema, seed, log)`: learn the schema's vocabularies and statistics;
- `rows()`: `{split: rows}` for the logs and the record;
- `train_stream(...)`: the `EpochStream` of training batches;
- `valid_batches(...)` and `report(...)`: validation batches, per-task metrics.

`LoadedInput` wraps the `DatasetSplits` a registered dataset or
`dataset.files` loads (three DataFrames); `StreamedInput` wraps the
`StreamedSplits` of `dataset: {files: ..., stream: true}`, whose rows are
read from the shards each time and never held whole.
"""

from __future__ import annotations

import tensorflow as tf

from mtrec.data.leakage import check_leakage
from mtrec.data.pandas_dataset import from_pandas
from mtrec.data.streamed_splits import StreamedSplits
from mtrec.evaluation.report import evaluate
from mtrec.training import checkpoints

__all__ = ["LoadedInput", "StreamedInput", "run_input"]


def run_input(data):
    """The input wrapper of `DatasetSplits` or `StreamedSplits`."""
    return StreamedInput(data) if isinstance(data, StreamedSplits) else LoadedInput(data)


class LoadedInput:
    """Three DataFrames (`DatasetSplits`)."""

    streamed = False

    def __init__(self, data):
        self.data = data

    def infer_frame(self):
        return self.data.train

    def adapt(self, schema, seed, log):
        schema.adapt(self.data.train)
        # Refuse label copies among the features; warn on near-perfect ones.
        check_leakage(self.data.train, schema)
        return None

    def rows(self):
        return {"train": len(self.data.train), "valid": len(self.data.valid),
                "test": len(self.data.test)}

    def train_stream(self, schema, batch_size, seed, strategy, worker, training_strategy):
        return checkpoints.EpochStream(lambda: _data_sharded(from_pandas(
            self.data.train, schema, batch_size=batch_size, shuffle=True, seed=seed),
            training_strategy))

    def valid_batches(self, schema, batch_size, training_strategy="none"):
        return _data_sharded(from_pandas(self.data.valid, schema, batch_size=batch_size),
                             training_strategy)

    def report(self, model, split, group_column, batch_size):
        from mtrec.experiments.runner import evaluate_model
        return evaluate_model(model, getattr(self.data, split), group_column, batch_size)


class StreamedInput:
    """Train / valid / test files read as streams (`StreamedSplits`)."""

    streamed = True

    def __init__(self, data):
        self.data = data
        self._head = None

    def infer_frame(self):
        if self._head is None:
            self._head = self.data.head()
        return self._head

    def adapt(self, schema, seed, log):
        summary = self.data.adapt(schema, seed=seed)
        log(f"Adapted the schema in one pass over {summary.rows:,} train rows "
            f"({len(self.data.files['train'])} file(s), {summary.seconds:.1f} s; "
            f"sampled statistics from {summary.sample_rows:,} rows)"
            f"{f'; vocabularies pruned to their most frequent ids: {summary.pruned}' if summary.pruned else ''}.")
        check_leakage(self.infer_frame(), schema)
        return summary

    def rows(self):
        return {split: self.data.rows(split) for split in ("train", "valid", "test")}

    def train_stream(self, schema, batch_size, seed, strategy, worker, training_strategy):
        if training_strategy != "multi_worker":
            steps = self.data.train_steps(batch_size)
            return checkpoints.EpochStream(lambda: self.data.train_batches(
                schema, batch_size, steps, seed))
        # Each worker reads its own share of the files (by file, or by record
        # when there are fewer files than workers), so tf.distribute must not
        # shard again: the datasets come from a function per input pipeline.
        per_worker = batch_size // worker.num_workers
        steps = self.data.train_steps(per_worker, worker.num_workers)
        return DistributedEpochStream(strategy, lambda context: self.data.train_batches(
            schema, per_worker, steps, seed, num_workers=context.num_input_pipelines,
            worker_index=context.input_pipeline_id), steps)

    def valid_batches(self, schema, batch_size, training_strategy="none"):
        return _data_sharded(self.data.batches("valid", schema, batch_size),
                             training_strategy)

    def report(self, model, split, group_column, batch_size):
        groups = (None if group_column is None
                  else self.data.column(split, group_column))
        return evaluate(model, self.data.batches(split, model.schema, batch_size),
                        groups=groups)


class DistributedEpochStream(checkpoints.EpochStream):
    """`EpochStream` of a dataset each worker builds for itself
    (`strategy.distribute_datasets_from_function`), for inputs already
    split between workers."""

    def __init__(self, strategy, make_worker_dataset, steps_per_epoch):
        super().__init__(None)
        self.strategy = strategy
        self.make_worker_dataset = make_worker_dataset
        self.steps_per_epoch = steps_per_epoch

    def at(self, epoch, step=0):
        def dataset_fn(context):
            self.make_dataset = lambda: self.make_worker_dataset(context)
            return checkpoints.EpochStream.at(self, epoch, step)

        return self.strategy.distribute_datasets_from_function(dataset_fn)


def _data_sharded(dataset, training_strategy):
    """`dataset` as tf.distribute shards it across workers: by batch (its
    rows are not split by file), so every worker reads the same order and
    keeps its share."""
    if training_strategy != "multi_worker":
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options)
