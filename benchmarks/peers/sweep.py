"""Scaling curves of the peers benchmark: train examples/s as one size varies.

    python benchmarks/peers/run.py --sweep batch_size=256,1024,4096,8192 \
        --sweep experts=4,8,16,32,64

Each `--sweep NAME=V1,V2,...` varies one size of the protocol
(`protocol.py`) and keeps every other at the protocol's value; several
sweeps are several one-dimensional curves, not a grid, and a point two
curves share (batch 1024 with 8 experts) runs once. Sweepable:

- `batch_size`: the training (and validation) batch, any model;
- `experts`: MMoE's number of experts (each [16] units).

A curve is a throughput curve, so a sweep run trains a fixed number of
epochs (`SWEEP_EPOCHS` unless `--max-epochs`), never stops early, and is
timed per epoch: train examples/s of one run = training rows / the median
training-pass seconds of its epochs after the first (the first carries
tracing). Per point and library: the median of that over seeds; the ratio
is mtrec / peer of those medians. Test AUC (best validation epoch's weights)
comes along, free.

Read by `run.py` (plans, runs and prints a sweep) and
`benchmarks/report.py` (its RESULTS.md section); plain Python.
"""

from __future__ import annotations

import statistics

#: name -> (runner flag, protocol value, models it applies to, unit label)
SWEEPABLE = {
    "batch_size": ("--batch-size", 1024, None, "batch size"),
    "experts": ("--num-experts", 8, ("MMoE",), "experts"),
}
#: Libraries whose runners take every sweep flag (all of them), and what
#: runs without --libraries.
DEFAULT_LIBRARIES = ["mtrec", "deepctr-reseeded"]
SWEEP_EPOCHS = 4
#: (mtrec variant, peer) pairs of the ratio columns, where both ran.
PAIRS = (("mtrec", "deepctr-reseeded"), ("mtrec", "deepctr"), ("mtrec", "torch-rechub"),
         ("mtrec-spe16", "deepctr-reseeded-spe16"))


class SweepError(ValueError):
    """A `--sweep` value that cannot be run; the message says why and what to write."""


def parse_sweep(text):
    """`"NAME=V1,V2,..."` -> `(name, [values])`, values positive ints, in order.

    Raises:
        SweepError: no `=`, an unknown name, a value that is not an integer
            >= 1, a repeated value, or no value.
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep:
        raise SweepError(f"--sweep {text!r}: expected NAME=V1,V2,... (e.g. "
                         f"batch_size=256,1024,4096), found no '='.")
    if name not in SWEEPABLE:
        raise SweepError(f"--sweep {text!r}: unknown size {name!r}; sweepable: "
                         f"{', '.join(sorted(SWEEPABLE))}.")
    parsed = []
    for item in (v.strip() for v in values.split(",")):
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            raise SweepError(f"--sweep {name}: {item!r} is not an integer; write whole "
                             f"numbers, e.g. {name}=4,8,16.") from None
        if value < 1:
            raise SweepError(f"--sweep {name}: {value} must be >= 1.")
        if value in parsed:
            raise SweepError(f"--sweep {name}: {value} is listed twice.")
        parsed.append(value)
    if not parsed:
        raise SweepError(f"--sweep {name}: no values after '='; e.g. {name}=4,8,16.")
    return name, parsed


def validate(sweeps, models):
    """Fail unless every sweep applies to every model asked for.

    Args:
        sweeps: list of `(name, values)` from `parse_sweep`.
        models: the models to run.
    """
    names = [name for name, _ in sweeps]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SweepError(f"--sweep {twice[0]} given more than once; list every value in "
                         f"one --sweep {twice[0]}=V1,V2,...")
    for name, _ in sweeps:
        applies = SWEEPABLE[name][2]
        wrong = [m for m in models if applies is not None and m not in applies]
        if wrong:
            raise SweepError(f"--sweep {name} applies to {', '.join(applies)} only, and "
                             f"--models has {', '.join(wrong)}; pass --models "
                             f"{','.join(applies)}.")


def base_point():
    """The protocol's sizes, `{name: value}`."""
    return {name: spec[1] for name, spec in SWEEPABLE.items()}


def points(sweeps):
    """The distinct configurations the sweeps need, in order.

    Returns:
        list of `{name: value}` (every sweepable name), each sweep's values
        with the others at the protocol's, a point shared by two sweeps once.
    """
    out = []
    for name, values in sweeps:
        for value in values:
            point = dict(base_point(), **{name: value})
            if point not in out:
                out.append(point)
    return out


def runner_flags(point):
    """The runner arguments of a point, `["--batch-size", "256", ...]`."""
    flags = []
    for name, value in point.items():
        flags += [SWEEPABLE[name][0], str(value)]
    return flags


def label(point):
    """`batch_size=256,experts=8`: the point in log names and the table."""
    return ",".join(f"{name}={value}" for name, value in point.items())


def schedule(point_list, seeds, models, libraries):
    """Jobs `(point, seed, model, library)`: every library at one (point,
    seed, model) before the next, their order rotated by one each time so
    that none always runs first; seed by seed, so that a sweep cut short
    holds whole curves of its first seeds."""
    jobs, turn = [], 0
    for seed in seeds:
        for point in point_list:
            for model in models:
                shift = turn % len(libraries)
                for library in libraries[shift:] + libraries[:shift]:
                    jobs.append((point, seed, model, library))
                turn += 1
    return jobs


def epoch_examples_per_s(run):
    """Training rows / median training-pass seconds of the epochs after the
    first (the first alone when only one ran)."""
    seconds = run["epoch_train_seconds"]
    timed = seconds[1:] or seconds[:1]
    return run["train_rows"] / statistics.median(timed)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs):
    """Medians over seeds per (point, model, library).

    Args:
        runs: successful runner results, each with the `"point"` run.py set.

    Returns:
        `{(label(point), model, library): {"n", "train_examples_per_s",
        "predict_examples_per_s", "income_auc", "marital_auc", "parameters"}}`.
    """
    groups = {}
    for run in runs:
        groups.setdefault((label(run["point"]), run["model"], run["library"]), []).append(run)
    return {key: {"n": len(group),
                  "train_examples_per_s": _median(epoch_examples_per_s(r) for r in group),
                  "predict_examples_per_s": _median(r["predict_examples_per_s"]
                                                    for r in group),
                  "income_auc": _median(r["test_auc"]["income"] for r in group),
                  "marital_auc": _median(r["test_auc"]["marital"] for r in group),
                  "parameters": group[0]["parameters"]}
            for key, group in groups.items()}


def curves(sweeps, models, libraries, runs):
    """One row per (sweep, value, model): each library's medians and the ratios.

    Returns:
        list of dicts `{"sweep", "value", "model", "libraries": {library:
        summary or None}, "ratios": {(mine, peer): train ex/s ratio}}`.
    """
    summary = summarize(runs)
    rows = []
    for name, values in sweeps:
        for value in values:
            point = dict(base_point(), **{name: value})
            for model in models:
                found = {lib: summary.get((label(point), model, lib)) for lib in libraries}
                ratios = {}
                for mine, peer in PAIRS:
                    ours, theirs = found.get(mine), found.get(peer)
                    if ours and theirs and theirs["train_examples_per_s"]:
                        ratios[(mine, peer)] = (ours["train_examples_per_s"]
                                                / theirs["train_examples_per_s"])
                rows.append({"sweep": name, "value": value, "model": model,
                             "libraries": found, "ratios": ratios})
    return rows


def _num(value, spec):
    return "—" if value is None else format(value, spec)


def markdown(sweeps, models, libraries, runs):
    """One Markdown table per sweep, as lines: per value, the seeds run
    (per library, when they differ), each library's train ex/s and test
    income AUC (medians over seeds), the mtrec/peer ratios."""
    rows = curves(sweeps, models, libraries, runs)
    pairs = [p for p in PAIRS if p[0] in libraries and p[1] in libraries]
    lines = []
    for name, _ in sweeps:
        unit = SWEEPABLE[name][3]
        lines += ["", f"Train examples/s vs {unit} (others at the protocol's: "
                      + ", ".join(f"{SWEEPABLE[n][3]} {v}" for n, v in base_point().items()
                                  if n != name) + "):", ""]
        header = [unit, "model", "seeds"]
        header += [f"{lib} train ex/s" for lib in libraries]
        header += [f"{lib} income AUC" for lib in libraries]
        header += [f"{mine} / {peer}" for mine, peer in pairs]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---:|" + "---|" + "---:|" * (len(header) - 2))
        for row in (r for r in rows if r["sweep"] == name):
            found = row["libraries"]
            counts = {found[lib]["n"] for lib in libraries if found[lib]}
            cells = [f"{row['value']:,}", row["model"],
                     "/".join(str(n) for n in sorted(counts)) or "0"]
            cells += [_num(found[lib] and found[lib]["train_examples_per_s"], ",.0f")
                      for lib in libraries]
            cells += [_num(found[lib] and found[lib]["income_auc"], ".4f")
                      for lib in libraries]
            cells += [_num(row["ratios"].get(pair), ".2f") + "x"
                      if pair in row["ratios"] else "—" for pair in pairs]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def trend(rows, name, model, pair):
    """How a pair's train ex/s moved from a sweep's first value to its last.

    Args:
        rows: `curves(...)`.
        name, model: the sweep and model.
        pair: `(mtrec variant, peer)`.

    Returns:
        `{"first", "last" (values), "ours", "theirs" (last / first train
        ex/s of each), "ratio_first", "ratio_last"}`, or None unless both
        libraries ran at both ends.
    """
    mine, peer = pair
    ends = [r for r in rows if r["sweep"] == name and r["model"] == model]
    if len(ends) < 2:
        return None
    first, last = ends[0], ends[-1]
    try:
        a0, a1 = (first["libraries"][mine]["train_examples_per_s"],
                  last["libraries"][mine]["train_examples_per_s"])
        b0, b1 = (first["libraries"][peer]["train_examples_per_s"],
                  last["libraries"][peer]["train_examples_per_s"])
    except (KeyError, TypeError):
        return None
    return {"first": first["value"], "last": last["value"], "ours": a1 / a0,
            "theirs": b1 / b0, "ratio_first": a0 / b0, "ratio_last": a1 / b1}
