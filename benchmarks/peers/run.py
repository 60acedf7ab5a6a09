"""Side-by-side benchmark of mtrec against DeepCTR and torch-rechub.

    python benchmarks/peers/run.py                 # 3 models x 3 seeds, every library
    python benchmarks/peers/run.py --smoke         # 1 seed, 2 epochs, 3,000 rows
    python benchmarks/peers/run.py --models MMoE --seeds 1 --libraries mtrec,deepctr
    python benchmarks/peers/run.py --sweep batch_size=256,1024,4096,8192 \
        --sweep experts=4,8,16,32,64     # scaling curves (sweep.py)

Runs in mtrec's environment and, from a fresh clone, does everything else
itself: creates the peers' virtual environments when missing
(`.venv-peers/deepctr`, `.venv-peers/rechub`, pinned by
`benchmarks/peers/requirements-*.txt`), encodes Census-Income group 1 once
(`prepare.py`, checksummed, reused), then runs the matched protocol
(`protocol.py`) one job at a time, each library's runner a subprocess in
its own environment, interleaving the libraries (their order rotates from
one (seed, model) to the next) under the same thread count. Writes every
run, the machine and the versions to `benchmarks/results/peers.json`
(`--smoke`: `runs/peers/peers-smoke.json`) and prints the table: medians
over seeds per (library, model) and mtrec's ratios to each peer.

With `--sweep` it runs scaling curves instead (`sweep.py`): MMoE, mtrec
and DeepCTR-reseeded, seed 1, a fixed number of epochs (no early
stopping) unless told otherwise, each curve's points with the libraries
interleaved; record `benchmarks/results/peers_sweep.json`.

Libraries: `mtrec`, `deepctr` (as shipped), `deepctr-reseeded` (DeepCTR
with every expert/tower/gate kernel re-drawn from its own seed, the fix of
its one-seed-for-every-block defect) and `torch-rechub`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import prepare  # noqa: E402  (benchmarks/peers/prepare.py)
import protocol  # noqa: E402
import sweep  # noqa: E402
import table  # noqa: E402

VENVS = ROOT / ".venv-peers"
# Each peer environment: its requirements file (pins) under benchmarks/peers/.
ENVIRONMENTS = {"deepctr": HERE / "requirements-deepctr.txt",
                "rechub": HERE / "requirements-rechub.txt"}
# library -> (environment or None for mtrec's own, runner script, extra args)
LIBRARIES = {
    "mtrec": (None, "mtrec_runner.py", []),
    "deepctr": ("deepctr", "deepctr_runner.py", []),
    "deepctr-reseeded": ("deepctr", "deepctr_runner.py", ["--reseed-blocks"]),
    "torch-rechub": ("rechub", "rechub_runner.py", []),
    # Both Keras libraries with 16 steps per call (mtrec's "auto" default
    # runs up to 16); DeepCTR's is in the default set, so mtrec's defaults
    # are also read against a DeepCTR given the same help.
    "mtrec-spe16": (None, "mtrec_runner.py", ["--steps-per-execution", "16"]),
    "deepctr-reseeded-spe16": ("deepctr", "deepctr_runner.py",
                               ["--reseed-blocks", "--steps-per-execution", "16"]),
}
#: What runs without --libraries.
DEFAULT_LIBRARIES = ["mtrec", "deepctr", "deepctr-reseeded", "deepctr-reseeded-spe16",
                     "torch-rechub"]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "peers.json"
SMOKE_OUT = ROOT / "runs" / "peers" / "peers-smoke.json"
SWEEP_OUT = ROOT / "benchmarks" / "results" / "peers_sweep.json"
SWEEP_SMOKE_OUT = ROOT / "runs" / "peers" / "peers_sweep-smoke.json"
LOGS = ROOT / "runs" / "peers" / "logs"
SMOKE = {"seeds": [1], "max_epochs": 2, "rows": 3000}


def _csv(text, allowed=None, cast=str, what="value"):
    values = [cast(v.strip()) for v in text.split(",") if v.strip()]
    if allowed is not None:
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {unknown}; choose from {sorted(allowed)}.")
    return values


def _sweep_arg(text):
    try:
        return sweep.parse_sweep(text)
    except sweep.SweepError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv):
    """The command line; defaults that depend on `--smoke` / `--sweep` are
    filled in after parsing (a sweep: MMoE, mtrec and DeepCTR-reseeded, seed
    1, `sweep.SWEEP_EPOCHS` epochs, no early stopping)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=lambda t: _csv(t, cast=int), default=None,
                        help="default 1,2,3 (a sweep: 1)")
    parser.add_argument("--models", type=lambda t: _csv(t, protocol.MODELS, what="model"),
                        default=None, help="default all three (a sweep: MMoE)")
    parser.add_argument("--libraries", default=None,
                        type=lambda t: _csv(t, LIBRARIES, what="library"),
                        help=f"default {','.join(DEFAULT_LIBRARIES)} (a sweep: "
                             f"{','.join(sweep.DEFAULT_LIBRARIES)})")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help=f"default {protocol.MAX_EPOCHS} (a sweep: {sweep.SWEEP_EPOCHS})")
    parser.add_argument("--patience", type=int, default=None,
                        help=f"early-stopping patience, default {protocol.PATIENCE} (a "
                             f"sweep: --max-epochs, i.e. it never stops early)")
    parser.add_argument("--sweep", action="append", default=[], type=_sweep_arg,
                        metavar="NAME=V1,V2,...",
                        help="a scaling curve over one size instead of the table "
                             f"(repeatable; sizes: {', '.join(sorted(sweep.SWEEPABLE))})")
    parser.add_argument("--rows", type=int, default=None,
                        help="training rows to draw (validation/test: the same fraction)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"quick check: seeds {SMOKE['seeds']}, {SMOKE['max_epochs']} "
                             f"epochs, {SMOKE['rows']} rows (unless given)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="framework threads for every library (default: the cores "
                             "this process may use)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter the peers' venvs are created from (needs "
                             "Python <= 3.11 for TF 2.15)")
    parser.add_argument("--cache", default=str(prepare.DEFAULT_CACHE))
    parser.add_argument("--out", default=None)
    parser.add_argument("--job-timeout", type=float, default=3600.0)
    parser.add_argument("--report", action="store_true",
                        help="regenerate benchmarks/RESULTS.md afterwards")
    args = parser.parse_args(argv)
    sweeping = bool(args.sweep)
    if args.seeds is None:
        args.seeds = SMOKE["seeds"] if args.smoke or sweeping else [1, 2, 3]
    if args.models is None:
        args.models = ["MMoE"] if sweeping else list(protocol.MODELS)
    if args.libraries is None:
        args.libraries = list(sweep.DEFAULT_LIBRARIES if sweeping else DEFAULT_LIBRARIES)
    if args.max_epochs is None:
        args.max_epochs = (SMOKE["max_epochs"] if args.smoke else
                           sweep.SWEEP_EPOCHS if sweeping else protocol.MAX_EPOCHS)
    if args.patience is None:
        args.patience = args.max_epochs if sweeping else protocol.PATIENCE
    if args.smoke and args.rows is None:
        args.rows = SMOKE["rows"]
    if sweeping:
        if args.max_epochs < 2:
            parser.error(f"--max-epochs {args.max_epochs}: a sweep times the epochs after "
                         f"the first (tracing), so it needs at least 2.")
        try:
            sweep.validate(args.sweep, args.models)
        except sweep.SweepError as e:
            parser.error(str(e))
    args.default_out = SWEEP_OUT if sweeping else DEFAULT_OUT
    smoke_out = SWEEP_SMOKE_OUT if sweeping else SMOKE_OUT
    args.out = Path(args.out or (smoke_out if args.smoke else args.default_out))
    return args


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_venv(name, python):
    """Create `.venv-peers/<name>` from its requirements file unless it was
    already built from the same file (a marker holds the file's sha256).

    Returns:
        dict `{"path", "created", "seconds", "requirements_sha256"}`.
    """
    requirements = ENVIRONMENTS[name]
    venv = VENVS / name
    marker = venv / ".installed"
    digest = _sha256(requirements)
    if marker.is_file() and marker.read_text().strip() == digest:
        return {"path": str(venv), "created": False, "seconds": 0.0,
                "requirements_sha256": digest}
    start = time.perf_counter()
    print(f"creating {venv} from {requirements.name} (a few minutes)", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["-r", str(requirements)], check=True)
    marker.write_text(digest + "\n")
    return {"path": str(venv), "created": True, "seconds": time.perf_counter() - start,
            "requirements_sha256": digest}


def interpreter(library):
    environment = LIBRARIES[library][0]
    return sys.executable if environment is None else str(VENVS / environment / "bin" / "python")


def schedule(seeds, models, libraries):
    """Jobs `(seed, model, library)`, one (seed, model) at a time with every
    library, the libraries' order rotated by one from each (seed, model) to
    the next so that none always runs first (or last)."""
    jobs, turn = [], 0
    for seed in seeds:
        for model in models:
            shift = turn % len(libraries)
            for library in libraries[shift:] + libraries[:shift]:
                jobs.append((seed, model, library))
            turn += 1
    return jobs


def run_job(library, model, seed, data_dir, args, point=None):
    """One runner subprocess; returns its result record (or an error record).

    `point`: a sweep's sizes (`sweep.points`), passed to the runner and
    kept in the record; None runs the protocol's."""
    _, script, extra = LIBRARIES[library]
    sizes = sweep.runner_flags(point) if point else []
    command = [interpreter(library), str(HERE / script), "--model", model,
               "--seed", str(seed), "--data", str(data_dir), "--threads", str(args.threads),
               "--max-epochs", str(args.max_epochs), "--patience", str(args.patience),
               *sizes, *extra]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if LIBRARIES[library][0] is None:
        # This checkout's mtrec, whatever is installed in the venv.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)
    LOGS.mkdir(parents=True, exist_ok=True)
    where = "-" + sweep.label(point).replace(",", "-") if point else ""
    log = LOGS / f"{library}-{model}-seed{seed}{where}.log"
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=args.job_timeout, cwd=ROOT)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        stdout, stderr, code = e.stdout or "", (e.stderr or "") + "\n[timed out]", -1
        stdout = stdout if isinstance(stdout, str) else stdout.decode()
        stderr = stderr if isinstance(stderr, str) else stderr.decode()
    wall = time.perf_counter() - start
    log.write_text(f"$ {' '.join(command)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    try:
        if code != 0:
            raise ValueError(f"exit status {code}")
        record = protocol.parse_result(stdout)
    except ValueError as e:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        failed = {"library": library, "model": model, "seed": seed, "error": str(e),
                  "stderr_tail": tail, "log": str(log.relative_to(ROOT)),
                  "wall_seconds": wall}
        return dict(failed, point=point) if point else failed
    # The orchestrator's name is the run's label: a runner knows only its
    # library, not the variant (mtrec-spe16 runs mtrec_runner.py too).
    record.update(library=library, wall_seconds=wall, log=str(log.relative_to(ROOT)))
    if point:
        record["point"] = point
    return record


def machine():
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": cpu_model or platform.processor(), "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)), "platform": platform.platform(),
            "python": platform.python_version()}


def _git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def write_record(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(path)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    venvs = {}
    for name in sorted({LIBRARIES[lib][0] for lib in args.libraries} - {None}):
        venvs[name] = ensure_venv(name, args.python)
        note = f"created in {venvs[name]['seconds']:.0f} s" if venvs[name]["created"] \
            else "up to date"
        print(f"venv {name}: {note}", flush=True)
    with protocol.Stopwatch() as clock:
        data_dir, manifest, reused = prepare.prepare(args.cache, args.rows)
    rows = {s: e["rows"] for s, e in manifest["splits"].items()}
    print(f"data: {data_dir} ({'reused, checksums match' if reused else 'encoded'}; "
          f"{rows}; {clock.seconds:.1f} s)", flush=True)

    record = {
        "suite": "peers_sweep" if args.sweep else "peers", "smoke": args.smoke,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/peers/run.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "git": _git_commit(), "machine": machine(), "threads": args.threads,
        "protocol": {"models": args.models, "seeds": args.seeds, "libraries": args.libraries,
                     "max_epochs": args.max_epochs, "patience": args.patience,
                     "batch_size": protocol.BATCH_SIZE,
                     "learning_rate": protocol.LEARNING_RATE,
                     "embedding_dim": protocol.EMBEDDING_DIM,
                     "rows": rows, "rows_requested": args.rows,
                     "timed": "train ex/s = training rows x epochs after the first / "
                              "their training-pass seconds (epoch start to validation "
                              "start); predict ex/s = test rows / one predict pass over "
                              "the test split (batch 1024) after a one-batch warm-up; "
                              "memory training adds = peak RSS of training and "
                              "prediction (VmHWM, reset once imports + data are done) "
                              "- RSS after imports + data"},
        "data": {"folder": str(data_dir), "reused": reused, "prepare_seconds": clock.seconds,
                 "files": {s: {"rows": e["rows"], "sha256": e["sha256"]}
                           for s, e in manifest["splits"].items()}},
        "venvs": venvs, "differences": table.CONFIG_DIFFERENCES, "runs": []}
    if args.sweep:
        record["protocol"]["sweeps"] = [{"name": n, "values": v} for n, v in args.sweep]
        record["protocol"]["points"] = sweep.points(args.sweep)
        record["protocol"]["timed"] = (
            f"{args.max_epochs} epochs per run, no early stopping (patience "
            f"{args.patience}); train ex/s of a run = training rows / the median "
            f"training-pass seconds (epoch start to validation start) of epoch"
            f"{'s 2-' if args.max_epochs > 2 else ' '}{args.max_epochs}; per point, the "
            f"median over seeds; predict ex/s = test "
            f"rows / one predict pass (batch {protocol.PREDICT_BATCH_SIZE}) after a "
            f"one-batch warm-up; test AUC with the best validation epoch's weights")
        jobs = sweep.schedule(record["protocol"]["points"], args.seeds, args.models,
                              args.libraries)
    else:
        jobs = [(None, *job) for job in schedule(args.seeds, args.models, args.libraries)]
    failures = 0
    for i, (point, seed, model, library) in enumerate(jobs, 1):
        result = run_job(library, model, seed, data_dir, args, point)
        record["runs"].append(result)
        where = f" {sweep.label(point)}" if point else ""
        if "error" in result:
            failures += 1
            print(f"[{i}/{len(jobs)}] {library} {model} seed {seed}{where}: FAILED "
                  f"({result['error']}; log {result['log']})\n{result['stderr_tail']}",
                  flush=True)
        else:
            print(f"[{i}/{len(jobs)}] {library} {model} seed {seed}{where}: "
                  f"income AUC {result['test_auc']['income']:.4f}, "
                  f"{result['epochs_run']} epochs, "
                  f"train {result['train_examples_per_s']:,.0f} ex/s, "
                  f"predict {result['predict_examples_per_s']:,.0f} ex/s, "
                  f"peak RSS {result['peak_rss_mb']:,.0f} MB "
                  f"({result['wall_seconds']:.0f} s)", flush=True)
        record["wall_seconds"] = time.perf_counter() - started
        write_record(args.out, record)
    record["versions"] = {r["library"]: r["versions"] for r in record["runs"]
                          if "versions" in r}
    record["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    record["wall_seconds"] = time.perf_counter() - started
    write_record(args.out, record)

    good = [r for r in record["runs"] if "error" not in r]
    m = record["machine"]
    print(f"\n{m['cpu_model']}, {m['cpu_affinity']} cores, {args.threads} threads per "
          f"library; medians over seeds {args.seeds}; rows {rows}\n")
    if args.sweep:
        print("\n".join(sweep.markdown(args.sweep, args.models, args.libraries, good)))
    else:
        print("\n".join(table.markdown(good)))
    print(f"\nwrote {args.out} ({len(good)} runs, {failures} failed; "
          f"{record['wall_seconds']:.0f} s)")
    if args.report and args.out.resolve() == args.default_out.resolve():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py")], check=True)
    elif args.report:
        # RESULTS.md reports benchmarks/results/peers.json and peers_sweep.json only.
        print(f"RESULTS.md left as it is: this record went to {args.out}, not "
              f"{args.default_out.relative_to(ROOT)}.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
