"""`mtrec tune`: an Optuna study over a run config's `tune.space`.

Each trial is `mtrec train` of the config with the trial's values set (as
`--set` sets them), judged on the validation split only: the runner does
not evaluate the test split for a trial (`evaluate_test=False`), and the
epochs' validation values go to Optuna (`trial.report`) so its pruner can
stop a poor trial early (`ReportToTrial` raises `optuna.TrialPruned`).
Optuna's own samplers and pruners choose; there is no search loop here.

The tune folder (`--out`, default `runs/tune-<dataset>-<model>-<hash>`, a
hash of the config and its tune section, so rerunning the same command
finds it):

    study.journal   the study: Optuna's JournalStorage over a
                    JournalFileBackend, an append-only log that a kill
                    cannot corrupt (a torn last line is cut off on rerun)
    trials/NNN/     the run folder of trial NNN (completed trials; its
                    metrics.json has test: null); pruned and failed
                    trials keep none
    trials.csv      `study.trials_dataframe()`: one row per trial
    best.yaml       the config with the best trial's values, without the
                    tune section: `mtrec train best.yaml` trains it and
                    reads the test split, once
    tune.lock       the pid of the process running the study (one at a time)

Rerunning the same command resumes: trials already complete or pruned
count towards `--trials`, and only the rest run. A trial left running by a
killed process (or interrupted by Ctrl-C) is marked failed and retried
first with the same values, resuming from its checkpoints. A changed
config or tune section (other than `trials`) is refused: use another
`--out`.

Every trial trains with the config's `training.seed`, so trials differ by
their values alone and `best.yaml` retrains the best trial exactly (on
CPU). The sampler's seed is `tune.sampler.seed` (default: the config's
seed) plus the number of trials the study already holds, so a resumed
study draws new points, deterministically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mtrec.experiments import run_folder, runner
from mtrec.experiments.config import ConfigError, parse_config, set_values
from mtrec.training.callbacks import MeanValidationScore, TrainingDiverged
from mtrec.tuning.pruning import ReportToTrial
from mtrec.tuning.space import load_tune_config
from mtrec.utils.atomic import alive, write_text_atomic

__all__ = ["STUDY_NAME", "TuneResult", "default_tune_dir", "tune"]

STUDY_NAME = "mtrec-tune"
STUDY_FILE = "study.journal"
LOCK_FILE = "tune.lock"
TRIALS_DIR = "trials"
_DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclasses.dataclass
class TuneResult:
    """What `tune` produced.

    Attributes:
        output_dir: pathlib.Path of the tune folder.
        study: the `optuna.Study`.
        counts: `{"complete", "pruned", "failed", "ran"}`: trials of the
            study in each state, and how many this call ran.
        best_value: float, the best trial's metric (None without one).
        best_values: `{config key: value}` of the best trial (None without).
        best_config: `RunConfig` of `best.yaml` (None without a best trial).
    """

    output_dir: Path
    study: optuna.Study
    counts: dict
    best_value: float | None
    best_values: dict | None
    best_config: object | None


def tune(config_path, trials=None, output_dir=None, overrides=(), log=print):
    """Run (or resume) the study of a config's `tune` section.

    Args:
        config_path: str or path of the config YAML (with a `tune` section).
        trials: int, the study's target of complete + pruned trials;
            defaults to `tune.trials`.
        output_dir: the tune folder; default `default_tune_dir(...)`.
        overrides: `"dotted.key=value"` strings, as `mtrec train --set`
            (`tune.*` keys too).
        log: function printing progress lines; None to stay quiet.

    Returns:
        `TuneResult`.

    Raises:
        ConfigError: the config or its tune section is invalid, or the tune
            folder holds the study of another config.
    """
    log = log or (lambda *args, **kwargs: None)
    base, spec = load_tune_config(config_path, overrides)
    target = trials if trials is not None else spec.trials
    if target is None or target < 1:
        raise ConfigError([f"how many trials? Pass --trials N or set tune.trials "
                           f"(got {target!r})."], source=config_path)
    fingerprint = _fingerprint(base.to_dict(), spec)
    # Trials set their values on the config as written, so that a
    # schema.defaults key reaches the schema.features entries too.
    base_data = base.to_dict(as_written=True)
    out = (Path(output_dir) if output_dir is not None
           else default_tune_dir(base, fingerprint))
    out.mkdir(parents=True, exist_ok=True)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial, ours
    try:
        with _Lock(out / LOCK_FILE):
            study = _open_study(out, spec, fingerprint)
            _retry_interrupted(study, log)
            done = sum(t.state in _DONE for t in study.trials)
            remaining = max(0, target - done)
            log(f"Study {out / STUDY_FILE}: {done} of {target} trials done, running "
                f"{remaining}; {spec.direction} {spec.metric} ({spec.key}) on the "
                f"validation split; {len(spec.space)} parameters: "
                + ", ".join(f"{p.key} {p.describe()}" for p in spec.space))
            if remaining:
                data = base.dataset.load()  # once: every trial sees the same splits
                objective = _Objective(base_data, spec, out / TRIALS_DIR, data)
                study.optimize(objective, n_trials=remaining,
                               catch=(TrainingDiverged, ConfigError),
                               callbacks=[_TrialLogger(spec, log)])
            result = _summarise(study, spec, base_data, out, remaining, config_path)
    finally:
        optuna.logging.set_verbosity(verbosity)
    _log_summary(result, spec, target, log)
    return result


def default_tune_dir(config, fingerprint, root="runs"):
    """`runs/tune-<dataset>-<model>-<fingerprint>`: the same for the same
    config and tune section, so rerunning the command resumes the study."""
    return Path(root) / f"tune-{config.dataset.label}-{config.model.name}-{fingerprint[:8]}"


# --------------------------------------------------------------------------
# the study and its trials
# --------------------------------------------------------------------------
def _fingerprint(base_data, spec):
    data = run_folder.fingerprinted(base_data)
    text = json.dumps({"config": data, "tune": spec.fingerprint_data()},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _open_study(out, spec, fingerprint):
    """Create or load the study in `out`, refusing one of another config."""
    path = out / STUDY_FILE
    _cut_torn_tail(path)
    # A symlink lock left by a killed process; we hold tune.lock, so no
    # other mtrec tune writes this journal (Optuna would wait 30 s for it).
    Path(str(path) + ".lock").unlink(missing_ok=True)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage,
                                direction=spec.direction, load_if_exists=True)
    found = study.user_attrs.get("fingerprint")
    if found is None and not study.trials:
        study.set_user_attr("fingerprint", fingerprint)
    elif found != fingerprint:
        raise ConfigError([f"{out} holds the study of another config or tune section "
                           f"(fingerprint {found}, this one {fingerprint}); pass another "
                           f"--out, or delete {out} to start again."], source=out)
    # Seeds move by the trials already drawn, so a rerun samples new points.
    return optuna.load_study(study_name=STUDY_NAME, storage=storage,
                             sampler=spec.make_sampler(seed_offset=len(study.trials)),
                             pruner=spec.make_pruner())


def _cut_torn_tail(path):
    """Drop a journal's last line if a kill left it half written (Optuna
    skips it, but a line appended after it would make it an error)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as file:
        content = file.read()
        if not content.endswith(b"\n"):
            file.truncate(content.rfind(b"\n") + 1)


def _retry_interrupted(study, log):
    """Mark trials left RUNNING by a killed process as failed, and enqueue
    every interrupted trial's values once more (with `retry_of`)."""
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    for trial in study.trials:
        killed = trial.state == TrialState.RUNNING
        if killed:
            study.tell(trial.number, state=TrialState.FAIL)
        if (killed or trial.user_attrs.get("interrupted")) and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            log(f"Trial {trial.number} was interrupted; retrying its values first.")


class _Objective:
    """One trial: the config with the trial's values, trained in
    trials/NNN with the validation split deciding."""

    def __init__(self, base_data, spec, trials_dir, data):
        self.base_data = base_data
        self.spec = spec
        self.trials_dir = Path(trials_dir)
        self.data = data

    def __call__(self, trial):
        spec = self.spec
        values = {p.key: p.suggest(trial) for p in spec.space}
        try:
            config = parse_config(set_values(self.base_data, values),
                                  source=f"trial {trial.number}")
        except ConfigError as error:  # a combination no single value showed
            trial.set_user_attr("error", str(error))
            raise
        folder = self.trials_dir / f"{trial.number:03d}"
        work = folder.with_name(folder.name + ".work")
        reported = self._resume(trial, work)
        reporter = ReportToTrial(trial, spec.key, reported=reported)
        # val_mean_score exists only where early stopping watches it.
        callbacks = ([MeanValidationScore()] if spec.key == "val_mean_score" else []) + \
                    [reporter]
        try:
            result = runner.train(config, output_dir=folder, verbose=0, log=None,
                                  data=self.data, overwrite=True, callbacks=callbacks,
                                  evaluate_test=False)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # retried by the next run
            raise
        except optuna.TrialPruned:
            shutil.rmtree(work, ignore_errors=True)  # never resumed
            raise
        except TrainingDiverged as error:
            trial.set_user_attr("error", " ".join(str(error).split()))
            shutil.rmtree(work, ignore_errors=True)
            raise
        record = result.record
        epoch = record["best_epoch"] or record["epochs_run"]
        value = reporter.values.get(epoch)
        if value is None:  # NaN that epoch: undefined, so the trial fails
            value = float("nan")
        trial.set_user_attr("run_dir", str(folder))
        trial.set_user_attr("epoch", epoch)
        trial.set_user_attr("epochs_run", record["epochs_run"])
        trial.set_user_attr("train_seconds", record["train_seconds"])
        return value

    def _resume(self, trial, work):
        """For a retried trial: take over the interrupted trial's work folder
        (the runner resumes from its checkpoints) and what it reported."""
        number = trial.user_attrs.get("retry_of")
        if number is None:
            return {}
        old = self.trials_dir / f"{number:03d}.work"
        if old.is_dir() and not work.exists():
            os.replace(old, work)
        return trial.study.trials[number].intermediate_values


class _TrialLogger:
    """One line per finished trial."""

    def __init__(self, spec, log):
        self.spec, self.log = spec, log

    def __call__(self, study, trial):
        values = ", ".join(f"{k.split('.')[-1]}={_plain(v)}" for k, v in
                           self.spec.values(trial.params).items())
        if trial.state == TrialState.COMPLETE:
            best = study.best_trial
            self.log(f"Trial {trial.number} ({values}): {self.spec.key} "
                     f"{trial.value:.6g} at epoch {trial.user_attrs.get('epoch')}; best "
                     f"{best.value:.6g} (trial {best.number})")
        elif trial.state == TrialState.PRUNED:
            last = max(trial.intermediate_values, default=None)
            self.log(f"Trial {trial.number} ({values}): pruned after epoch {last}")
        else:
            reason = " ".join(str(trial.user_attrs.get("error", "")).split())
            self.log(f"Trial {trial.number} ({values}): failed"
                     f"{': ' + reason[:300] if reason else ''}")


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------
def _summarise(study, spec, base_data, out, ran, config_path):
    """Write trials.csv and best.yaml (atomically); the `TuneResult`."""
    trials = study.trials
    counts = {"complete": sum(t.state == TrialState.COMPLETE for t in trials),
              "pruned": sum(t.state == TrialState.PRUNED for t in trials),
              "failed": sum(t.state == TrialState.FAIL for t in trials),
              "ran": ran}
    write_text_atomic(out / "trials.csv", study.trials_dataframe().to_csv(index=False))
    if not counts["complete"]:
        return TuneResult(out, study, counts, None, None, None)
    best = study.best_trial
    values = spec.values(best.params)
    config = parse_config(set_values(base_data, values), source=out / "best.yaml")
    header = (f"# mtrec tune {config_path}: trial {best.number} of {len(trials)} in "
              f"{out}, the best {spec.key} on the validation split ({best.value:.6g}).\n"
              f"# Its values: {json.dumps(values)}. Train it (and read the test split, "
              f"once) with: mtrec train {out / 'best.yaml'}\n")
    write_text_atomic(out / "best.yaml", header + config.to_yaml())
    return TuneResult(out, study, counts, best.value, values, config)


def _log_summary(result, spec, target, log):
    counts = result.counts
    log(f"\n{counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed ({counts['ran']} run now; target {target} "
        f"complete + pruned)")
    if result.best_values is None:
        log(f"No complete trial, so no best.yaml; wrote {result.output_dir}/trials.csv")
        return
    best = result.study.best_trial
    log(f"Best trial {best.number}: {spec.key} {result.best_value:.6g} "
        f"({spec.direction})")
    width = max(len(key) for key in result.best_values)
    for key, value in result.best_values.items():
        log(f"  {key:<{width}}  {_plain(value)}")
    log(f"Wrote {result.output_dir}/: best.yaml trials.csv {STUDY_FILE} {TRIALS_DIR}/")


def _plain(value):
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


class _Lock:
    """`tune.lock` holding this process's pid while it runs the study; a lock
    of a dead process is taken over, one of a live process refused."""

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                text = self.path.read_text(encoding="utf-8").strip()
                pid = int(text) if text.isdigit() else None
                if pid is not None and pid != os.getpid() and alive(pid):
                    raise ConfigError([f"another mtrec tune (pid {pid}) is running this "
                                       f"study; wait for it to end, or stop it and "
                                       f"rerun."], source=self.path.parent) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(str(os.getpid()))
            return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)
        return False
