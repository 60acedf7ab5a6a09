"""Which tasks should share: TAG's inter-task affinity on known task groups.

Four synthetic regression tasks (the MMoE paper's §3.2 generator,
`mtrec.data.synthetic.generate_tasks`) in two pairs: task weights with
cosine `--within` (0.9) inside a pair and 0 across. A model trained on all
four measures the lookahead affinity `Z[i -> j]` and the gradient cosine
for `--steps` steps (`mtrec.analysis.task_affinity`), then
`group_tasks(num_groups=2)` should recover the pairs.

Writes `benchmarks/results/task_affinity.json` and
`benchmarks/figures/task_affinity.png` (`python benchmarks/report.py` puts
them in RESULTS.md).

    python benchmarks/task_affinity.py [--model MMoE] [--steps 300] [--seed 1]
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import records  # noqa: E402  (benchmarks/records.py)

RESULT = records.RESULTS / "task_affinity.json"
FIGURE = HERE / "figures" / "task_affinity.png"
TASKS = ["a1", "a2", "b1", "b2"]


def correlations(within):
    """`(4, 4)` weight cosines: pairs (a1, a2) and (b1, b2) at `within`, 0 across."""
    return [[1.0, within, 0.0, 0.0], [within, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, within], [0.0, 0.0, within, 1.0]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MMoE", choices=["MMoE", "SharedBottom"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--within", type=float, default=0.9)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.01,
                        help="Adam's, and the lookahead SGD step's")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default=str(RESULT))
    parser.add_argument("--figure", default=str(FIGURE))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import numpy as np
    import pandas as pd

    import mtrec
    from mtrec.analysis import group_tasks, task_affinity
    from mtrec.data.synthetic import generate_tasks

    cosines = correlations(args.within)
    x, y = generate_tasks(args.rows, cosines, dim=args.dim, seed=args.seed)
    frame = pd.DataFrame(x.astype("float32"), columns=[f"x{i:02d}" for i in range(args.dim)])
    for k, task in enumerate(TASKS):
        frame[task] = y[:, k].astype("float32")
    label_correlation = np.corrcoef(y, rowvar=False)
    schema = mtrec.Schema([mtrec.Numeric(c) for c in frame.columns[:args.dim]],
                          {t: "regression" for t in TASKS}).adapt(frame)
    keras.utils.set_random_seed(args.seed)
    if args.model == "MMoE":
        model = mtrec.models.MMoE(schema, num_experts=4, expert_units=[32], tower_units=[8])
    else:
        model = mtrec.models.SharedBottom(schema, bottom_units=[64], tower_units=[8])
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    data = mtrec.data.from_pandas(frame, schema, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed, drop_remainder=True)
    start = time.perf_counter()
    result = task_affinity(model, data, steps=args.steps, learning_rate=args.learning_rate)
    seconds = time.perf_counter() - start
    grouping = group_tasks(result, num_groups=2)
    by_cosine = group_tasks(result.gradient_cosine, num_groups=2, task_names=TASKS)

    print(f"{args.model}, {args.steps} steps of {args.batch_size} rows, lookahead lr "
          f"{args.learning_rate}, {result.num_shared_parameters:,} shared parameters, "
          f"{seconds:.1f} s")
    print("affinity Z[source -> target]:")
    print(result.to_frame().to_string(float_format=lambda v: f"{v:+.5f}"))
    print("standard error:")
    print(result.to_frame("stderr").to_string(float_format=lambda v: f"{v:.5f}"))
    print("gradient cosine:")
    print(result.to_frame("gradient_cosine").to_string(float_format=lambda v: f"{v:+.3f}"))
    print(f"group_tasks(num_groups=2): {grouping.groups}, score {grouping.score:.5f}")
    print(f"same on the gradient cosine: {by_cosine.groups}")
    expected = [["a1", "a2"], ["b1", "b2"]]

    summary = {
        "machine": platform.platform(), "model": args.model, "steps": args.steps,
        "batch_size": args.batch_size, "rows": args.rows, "dim": args.dim,
        "seed": args.seed, "learning_rate": args.learning_rate,
        "within_pair_cosine": args.within, "task_names": result.task_names,
        "weight_cosines": cosines, "label_correlation": label_correlation.tolist(),
        "num_shared_parameters": result.num_shared_parameters,
        "affinity": result.matrix.tolist(), "stderr": result.stderr.tolist(),
        "gradient_cosine": result.gradient_cosine.tolist(),
        "groups": grouping.groups, "score": grouping.score,
        "task_scores": grouping.task_scores, "groups_by_gradient_cosine": by_cosine.groups,
        "recovered_pairs": grouping.groups == expected, "seconds": seconds,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    records.write_record(args.output, summary)
    # Written whole, as the record: a temporary sibling (still .png, which
    # matplotlib reads the format from), then renamed.
    figure = Path(args.figure)
    figure.parent.mkdir(parents=True, exist_ok=True)
    os.replace(result.plot(figure.with_name(f".{figure.stem}.tmp-{os.getpid()}.png")),
               figure)
    print(f"wrote {args.output} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
