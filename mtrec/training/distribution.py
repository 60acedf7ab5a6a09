"""Training on several replicas or workers with `tf.distribute`.

`training.strategy` in a run config (or `make_strategy(name)`):

    none          one process, one device (the default)
    mirrored      `tf.distribute.MirroredStrategy`: the devices of one host
    multi_worker  `tf.distribute.MultiWorkerMirroredStrategy`: one process
                  per worker, on one host or many, the cluster read from
                  `TF_CONFIG` (`mtrec train --local-workers N` writes one
                  for N workers on 127.0.0.1)

`training.batch_size` is per replica: the global batch is it times the
replicas in sync, as in the TF guides. Every worker runs the same command;
only the chief (`TF_CONFIG` task `chief`, else worker 0) writes the run
folder and checkpoints, the others read the chief's checkpoints to resume,
so the run folder (and its `.work` sibling) must be on a file system every
worker sees (one host, or a shared mount).

Keras 3 workarounds, each the smallest that works (tested in
tests/training/test_distribution.py):

- keras-team/keras#20329: Keras builds the model from the first batch by
  `strategy.reduce("MEAN", batch)`, which MultiWorkerMirroredStrategy
  refuses for a dict of features (`MultiTaskModel._maybe_symbolic_build`
  takes the first replica's values instead: only their shapes are used).
- tensorflow/tensorflow#72388: Keras 3 reduces each step's scalar logs
  across workers along an axis they do not have (`reducible_logs` gives
  them one).
- Losses reduced with `reduction="sum"` are not divided by the replicas
  in sync (Keras only does so for mean reductions), so gradients, summed
  over replicas, came out replicas-times too large: `TaskLoss` divides
  (`replica_share`) and the logs undo it, as Keras does for its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import tensorflow as tf

__all__ = ["STRATEGIES", "Role", "free_ports", "local_cluster", "make_strategy",
           "replica_share", "role", "run_local_workers", "undo_replica_share"]

STRATEGIES = ("none", "mirrored", "multi_worker")


class Role:
    """This process's place in a cluster.

    Attributes:
        index: int, this worker's index (0 in a single process).
        num_workers: int, workers in the cluster (1 in a single process).
        is_chief: bool, whether this process writes the run folder.
    """

    def __init__(self, index=0, num_workers=1, is_chief=True):
        self.index, self.num_workers, self.is_chief = index, num_workers, is_chief

    def __repr__(self):
        return (f"Role(index={self.index}, num_workers={self.num_workers}, "
                f"is_chief={self.is_chief})")


def role(strategy_name="none"):
    """This process's `Role`; read from `TF_CONFIG` for `multi_worker`.

    Raises:
        ValueError: `multi_worker` without a usable `TF_CONFIG`.
    """
    if strategy_name != "multi_worker":
        return Role()
    config = _tf_config()
    cluster, task = config.get("cluster", {}), config.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    kind, index = task.get("type"), int(task.get("index", 0))
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return Role(index=index + (1 if kind == "worker" and "chief" in cluster else 0),
                num_workers=workers, is_chief=is_chief)


def make_strategy(name):
    """The `tf.distribute` strategy of `training.strategy`.

    Args:
        name: `"none"`, `"mirrored"` or `"multi_worker"`.

    Returns:
        `tf.distribute.Strategy` (the default strategy for `"none"`).
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        _tf_config()  # a clear error before TF's own
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown training.strategy {name!r}; expected one of "
                     f"{list(STRATEGIES)}.")


def is_distributed(model):
    """Whether `model` was built under a distribution strategy or this call
    runs inside one (XLA and several steps per call are left to plain
    single-process runs: neither was measured under tf.distribute)."""
    return (getattr(model, "_distribute_strategy", None) is not None
            or tf.distribute.has_strategy())


def replica_share(value):
    """`value` / replicas in sync: each replica's share of a loss whose
    gradients `tf.distribute` sums over replicas (Keras' mean-reduced losses
    do the same). `value` unchanged outside a strategy."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value if replicas == 1 else value * (1.0 / replicas)


def undo_replica_share(value):
    """The inverse of `replica_share`, for logging a loss."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value if replicas == 1 else value * float(replicas)


def reducible_logs(logs):
    """A step's logs as `(1,)` tensors under MultiWorkerMirroredStrategy.

    tensorflow/tensorflow#72388: Keras 3 reduces each step's logs across
    workers with `strategy.reduce("MEAN", value, axis=0)`, which fails for
    scalars ("Invalid reduction dimension 0 for input with 0 dimensions");
    a `(1,)` value reduces to the scalar mean. Unchanged otherwise.
    """
    if not isinstance(tf.distribute.get_strategy(),
                      tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {key: tf.reshape(value, (1,)) for key, value in logs.items()}


def first_replica_values(batch):
    """A (possibly distributed) batch's values on this worker's first
    replica, structure kept: for building a model from one batch's shapes."""
    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return value.values[0]   # this worker's replicas, in order
        return value
    return tf.nest.map_structure(local, batch)


# --------------------------------------------------------------------------
# A local cluster on loopback, for trying multi-worker on one machine
# --------------------------------------------------------------------------
def free_ports(count):
    """`count` free TCP ports on 127.0.0.1 (bound and released at once)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_cluster(num_workers):
    """One `TF_CONFIG` JSON string per worker of a cluster on 127.0.0.1."""
    if num_workers < 1:
        raise ValueError(f"--local-workers must be >= 1, got {num_workers}.")
    workers = [f"127.0.0.1:{port}" for port in free_ports(num_workers)]
    return [json.dumps({"cluster": {"worker": workers},
                        "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]


def run_local_workers(argv, num_workers, stream=None):
    """Run `mtrec` with `argv` in `num_workers` processes on 127.0.0.1.

    Each gets its `TF_CONFIG` and `training.strategy=multi_worker`; their
    output is printed line by line, prefixed `[worker i]` (worker 0, the
    chief, unprefixed). When one fails, the others are stopped.

    Args:
        argv: list of str, the `mtrec` arguments (e.g. `["train", "c.yaml"]`).
        num_workers: int.
        stream: file to print to; defaults to `sys.stdout`.

    Returns:
        int, the exit status: the chief's, or the first failing worker's.
    """
    stream = stream or sys.stdout
    children = []
    for index, tf_config in enumerate(local_cluster(num_workers)):
        env = dict(os.environ, TF_CONFIG=tf_config)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "mtrec.cli", *argv,
             "--set", "training.strategy=multi_worker"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1))
    lock = threading.Lock()

    def relay(index, child):
        prefix = "" if index == 0 else f"[worker {index}] "
        for line in child.stdout:
            with lock:  # mtrec's own lines come prefixed already
                stream.write(line if line.startswith(prefix) else prefix + line)
                stream.flush()

    relays = [threading.Thread(target=relay, args=(i, c), daemon=True)
              for i, c in enumerate(children)]
    for thread in relays:
        thread.start()
    failed = None
    try:
        while any(c.poll() is None for c in children):
            for child in children:
                if child.poll() not in (None, 0) and failed is None:
                    failed = child
                    for other in children:  # a lone worker would wait forever
                        if other.poll() is None:
                            other.terminate()
            threading.Event().wait(0.2)
    except KeyboardInterrupt:
        for child in children:
            child.send_signal(2)
        for child in children:
            child.wait()
        raise
    for thread in relays:
        thread.join(timeout=5)
    return (failed or children[0]).returncode


def _tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "training.strategy multi_worker reads the cluster from the TF_CONFIG "
            "environment variable, which is not set. Set it on every worker (see the "
            "README), or try it on this machine with mtrec train CONFIG "
            "--local-workers 2.")
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {text[:80]!r}.") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' entries, e.g. "
                         f"{{\"cluster\": {{\"worker\": [\"host1:2222\", \"host2:2222\"]}}, "
                         f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}; got {text[:80]!r}.")
    return config
