"""Side-by-side benchmark of mtrec against DeepCTR and torch-rechub.

    python benchmarks/peers/run.py                 # 3 models x 3 seeds, every library
    python benchmarks/peers/run.py --smoke         # 1 seed, 2 epochs, 3,000 rows
    python benchmarks/peers/run.py --models MMoE --seeds 1 --libraries mtrec,deepctr

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
    # Both Keras libraries with 16 steps per call of the compiled step (what
    # `mtrec train` runs by default); not in the default set.
    "mtrec-spe16": (None, "mtrec_runner.py", ["--steps-per-execution", "16"]),
    "deepctr-reseeded-spe16": ("deepctr", "deepctr_runner.py",
                               ["--reseed-blocks", "--steps-per-execution", "16"]),
}
#: What runs without --libraries.
DEFAULT_LIBRARIES = ["mtrec", "deepctr", "deepctr-reseeded", "torch-rechub"]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "peers.json"
SMOKE_OUT = ROOT / "runs" / "peers" / "peers-smoke.json"
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


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=lambda t: _csv(t, cast=int), default=[1, 2, 3])
    parser.add_argument("--models", type=lambda t: _csv(t, protocol.MODELS, what="model"),
                        default=list(protocol.MODELS))
    parser.add_argument("--libraries", default=list(DEFAULT_LIBRARIES),
                        type=lambda t: _csv(t, LIBRARIES, what="library"))
    parser.add_argument("--max-epochs", type=int, default=protocol.MAX_EPOCHS)
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
    if args.smoke:
        defaults = parser.parse_args([])
        if args.seeds == defaults.seeds:
            args.seeds = SMOKE["seeds"]
        if args.max_epochs == defaults.max_epochs:
            args.max_epochs = SMOKE["max_epochs"]
        if args.rows is None:
            args.rows = SMOKE["rows"]
    args.out = Path(args.out or (SMOKE_OUT if args.smoke else DEFAULT_OUT))
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


def run_job(library, model, seed, data_dir, args):
    """One runner subprocess; returns its result record (or an error record)."""
    _, script, extra = LIBRARIES[library]
    command = [interpreter(library), str(HERE / script), "--model", model,
               "--seed", str(seed), "--data", str(data_dir), "--threads", str(args.threads),
               "--max-epochs", str(args.max_epochs), *extra]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if LIBRARIES[library][0] is None:
        # This checkout's mtrec, whatever is installed in the venv.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{library}-{model}-seed{seed}.log"
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
        return {"library": library, "model": model, "seed": seed, "error": str(e),
                "stderr_tail": tail, "log": str(log.relative_to(ROOT)), "wall_seconds": wall}
    # The orchestrator's name is the run's label: a runner knows only its
    # library, not the variant (mtrec-spe16 runs mtrec_runner.py too).
    record.update(library=library, wall_seconds=wall, log=str(log.relative_to(ROOT)))
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
        "suite": "peers", "smoke": args.smoke,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/peers/run.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "git": _git_commit(), "machine": machine(), "threads": args.threads,
        "protocol": {"models": args.models, "seeds": args.seeds, "libraries": args.libraries,
                     "max_epochs": args.max_epochs, "patience": protocol.PATIENCE,
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
    jobs = schedule(args.seeds, args.models, args.libraries)
    failures = 0
    for i, (seed, model, library) in enumerate(jobs, 1):
        result = run_job(library, model, seed, data_dir, args)
        record["runs"].append(result)
        if "error" in result:
            failures += 1
            print(f"[{i}/{len(jobs)}] {library} {model} seed {seed}: FAILED "
                  f"({result['error']}; log {result['log']})\n{result['stderr_tail']}",
                  flush=True)
        else:
            print(f"[{i}/{len(jobs)}] {library} {model} seed {seed}: "
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
    print("\n".join(table.markdown(good)))
    print(f"\nwrote {args.out} ({len(good)} runs, {failures} failed; "
          f"{record['wall_seconds']:.0f} s)")
    if args.report and args.out.resolve() == DEFAULT_OUT.resolve():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py")], check=True)
    elif args.report:
        # RESULTS.md reports benchmarks/results/peers.json only.
        print(f"RESULTS.md left as it is: this record went to {args.out}, not "
              f"{DEFAULT_OUT.relative_to(ROOT)}.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
