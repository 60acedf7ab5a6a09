"""Training under tf.distribute: roles from TF_CONFIG, replica-shared losses,
and a 2-worker run on loopback against a 1-process run."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from mtrec.cli import main
from mtrec.data.registry import load_dataset
from mtrec.training import distribution
from helpers import error_of


def tf_config(cluster, kind, index):
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


@pytest.mark.parametrize("cluster, kind, index, expected", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, (0, 2, True)),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, (1, 2, False)),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "chief", 0, (0, 3, True)),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "worker", 0, (1, 3, False)),
])
def test_the_role_comes_from_tf_config(monkeypatch, cluster, kind, index, expected):
    monkeypatch.setenv("TF_CONFIG", tf_config(cluster, kind, index))
    role = distribution.role("multi_worker")
    assert (role.index, role.num_workers, role.is_chief) == expected
    single = distribution.role("none")          # TF_CONFIG only matters for multi_worker
    assert (single.index, single.num_workers, single.is_chief) == (0, 1, True)


@pytest.mark.parametrize("value, message", [
    (None, "TF_CONFIG environment variable, which is not set"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {}}', "TF_CONFIG needs 'cluster' and 'task' entries"),
])
def test_a_missing_or_bad_tf_config_says_what_to_do(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    text = error_of(lambda: distribution.role("multi_worker"))
    assert message in text
    if value is None:
        assert "--local-workers 2" in text


def test_a_local_cluster_has_distinct_free_ports():
    configs = [json.loads(c) for c in distribution.local_cluster(3)]
    workers = configs[0]["cluster"]["worker"]
    assert len(set(workers)) == 3 and all(w.startswith("127.0.0.1:") for w in workers)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    assert all(c["cluster"]["worker"] == workers for c in configs)


# Two logical CPUs must be set up before TensorFlow starts: a fresh process.
MIRRORED_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, mtrec
    from mtrec.data.registry import load_dataset
    data = load_dataset("synthetic_tiny", rows=600, seed=1)
    schema = mtrec.Schema.infer(data.train, tasks=data.tasks, verbose=False)
    schema.adapt(data.train)
    batch = next(iter(mtrec.data.from_pandas(data.train.iloc[:256], schema,
                                             batch_size=256)))

    def one_step(strategy, weighting):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[8],
                                      tower_units=[4])
            model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False,
                          loss_weighting=weighting)
        dataset = tf.data.Dataset.from_tensors(batch)
        logs = model.fit(dataset, epochs=1, verbose=0).history
        return [w.tolist() for w in model.get_weights()], logs["loss"][0]

    # One MirroredStrategy per process: a second one reuses collective keys.
    weighting = sys.argv[1]
    plain = one_step(tf.distribute.get_strategy(), weighting)
    mirrored = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), weighting)
    print("RESULT " + json.dumps({
        "max_weight_difference": max(float(np.max(np.abs(np.subtract(a, b))))
                                     for a, b in zip(plain[0], mirrored[0])),
        "losses": [plain[1], mirrored[1]]}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
def test_a_mirrored_step_equals_a_single_device_step(weighting):
    """One SGD step on a batch split over 2 replicas updates the weights as
    the whole batch on one device does, and logs the same loss (the
    sum-reduced task losses are divided by the replicas in sync; before,
    the step was twice as large and the logged loss doubled). Gradient
    surgery (PCGrad, GradNorm) works per replica, so it is not exact."""
    done = subprocess.run([sys.executable, "-c", MIRRORED_STEP, weighting],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    values = json.loads(lines[0][len("RESULT "):])
    assert values["max_weight_difference"] < 1e-6, values
    assert values["losses"][1] == pytest.approx(values["losses"][0], rel=1e-6)


def write_shards(folder, count=4):
    data = load_dataset("synthetic_tiny", rows=2000, seed=1)
    table = pd.concat([data.train, data.valid, data.test], ignore_index=True)
    folder.mkdir()
    for index, part in enumerate(np.array_split(np.arange(len(table)), count)):
        table.iloc[part].to_csv(folder / f"part-{index}.csv", index=False)


# Slow (~23 s: two worker processes); make test-slow.
@pytest.mark.slow
def test_two_local_workers_match_one_process(tmp_path, capsys):
    """`mtrec train --local-workers 2` over 4 CSV shards: both workers
    finish, only the chief writes the run folder, and its test AUCs are
    within 0.02 of a 1-process run with the same global batch (the
    workers see the same rows, split per step; dropout-free model)."""
    write_shards(tmp_path / "data")
    config = {
        "dataset": {"files": "data/part-*.csv",
                    "split": {"valid": 0.15, "test": 0.15, "seed": 0},
                    "tasks": {"click": "binary", "like": "binary"}},
        "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                           "tower_units": [4]}},
        "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01, "seed": 2,
                     "early_stopping": None, "tensorboard": False},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--local-workers", "2",
                 "--output", str(tmp_path / "two")]) == 0
    out = capsys.readouterr().out
    assert "[worker 1] Trained 2 epoch(s)" in out
    assert "Wrote " in out and "[worker 1] Wrote" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run.yaml", "two"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["strategy"] == {"name": "multi_worker", "replicas": 2, "workers": 2,
                               "global_batch_size": 256}
    assert main(["train", str(path), "--set", "training.batch_size=256",
                 "--output", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    for task in ("click", "like"):
        assert two["metrics"]["test"][task]["auc"] == pytest.approx(
            one["metrics"]["test"][task]["auc"], abs=0.02)


@pytest.mark.slow
def test_killed_local_workers_resume_from_the_chiefs_checkpoint(tmp_path):
    """SIGKILL of the launcher and both workers after epoch 1's checkpoint;
    the same command resumes both workers from the chief's checkpoint (the
    record says so) and finishes with a whole run folder."""
    import signal
    import time

    config = {
        "dataset": {"name": "synthetic_tiny", "args": {"rows": 2000, "seed": 1}},
        "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                           "tower_units": [4]}},
        "training": {"epochs": 3, "batch_size": 128, "learning_rate": 0.01, "seed": 2,
                     "early_stopping": None, "tensorboard": False},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "mtrec.cli", "train", str(path), "--local-workers",
               "2", "--output", str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = out.with_name("run.work") / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not any(checkpoints.glob("epoch-0001-*")) and time.monotonic() < deadline:
            assert child.poll() is None, "the run ended before its first checkpoint"
            time.sleep(0.2)
        assert any(checkpoints.glob("epoch-0001-*")), "no checkpoint within 240 s"
    finally:
        os.killpg(child.pid, signal.SIGKILL)      # the launcher and both workers
        child.wait()
    assert not out.exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[worker 1] Resuming from" in done.stdout and "\nResuming from" in done.stdout
    record = json.loads((out / "metrics.json").read_text())
    assert record["resumed_from"]["epoch"] >= 1 and record["epochs_run"] == 3
    assert not out.with_name("run.work").exists()
