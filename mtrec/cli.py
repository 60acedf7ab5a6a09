"""The `mtrec` command line.

    mtrec train CONFIG.yaml [--set training.epochs=2 ...] [--output DIR]
                [--overwrite] [--resume | --restart]
    mtrec validate CONFIG.yaml [--set ...]
    mtrec tune CONFIG.yaml [--trials N] [--out DIR] [--set ...]
    mtrec evaluate RUN_DIR_OR_MODEL.keras [--config CONFIG.yaml] [--set ...]
    mtrec export MODEL.keras OUTPUT_DIR [--overwrite]
    mtrec predict MODEL INPUT.csv|.parquet OUTPUT.csv|.parquet [--batch-size N]
                  [--chunk-rows N]

Errors print one line to stderr and exit with status 2 (set MTREC_DEBUG=1
for the traceback); `mtrec train` exits with 3 when training diverged (a
non-finite loss: nothing is written, the last good checkpoint is kept) and
with 130 on Ctrl-C (after saving a checkpoint; the same command resumes).
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def _add_overrides(parser):
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by its dotted key, e.g. training.epochs=2 "
             "(value read as YAML; repeatable)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mtrec", description="Multi-task recommendation models: train, "
                                  "evaluate, export and score from run configs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("train", help="train a model from a config YAML",
                            description="Train from a config; write config.yaml, "
                                        "schema.json, model.keras, metrics.json, "
                                        "metrics.md (and gates.png) to the output "
                                        "folder.")
    p.add_argument("config", help="run config YAML")
    _add_overrides(p)
    p.add_argument("--output", help="output folder (overrides output_dir; default "
                                    "runs/<dataset>-<model>-<timestamp>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run in the output folder (only once the "
                        "new run is complete)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=True,
                        help="resume an interrupted run of the same config from its "
                             "last checkpoint (the default)")
    resume.add_argument("--restart", dest="resume", action="store_false",
                        help="discard the checkpoints of an interrupted run and start "
                             "again at epoch 1")
    p.add_argument("--local-workers", type=int, metavar="N",
                   help="run N worker processes on 127.0.0.1 with a generated TF_CONFIG "
                        "and training.strategy=multi_worker (to try multi-worker "
                        "training on one machine)")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("validate", help="validate a config YAML, run nothing")
    p.add_argument("config", help="run config YAML")
    _add_overrides(p)
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser(
        "tune", help="search a config's tune.space with Optuna (validation split only)",
        description="Run, or resume, the Optuna study of the config's tune section: "
                    "each trial trains the config with the trial's values and is "
                    "judged (and pruned) on the validation split; the test split is "
                    "never read. Writes study.journal, trials/NNN/, trials.csv and "
                    "best.yaml (train it with mtrec train) to the tune folder; "
                    "rerunning the same command resumes the study.")
    p.add_argument("config", help="run config YAML with a tune section")
    p.add_argument("--trials", type=int, metavar="N",
                   help="complete + pruned trials the study should hold (default "
                        "tune.trials); trials of earlier runs count")
    p.add_argument("--out", metavar="DIR",
                   help="tune folder (default runs/tune-<dataset>-<model>-<hash of the "
                        "config>)")
    _add_overrides(p)
    p.set_defaults(func=cmd_tune)

    p = commands.add_parser("evaluate",
                            help="re-evaluate a saved model on a config's test split")
    p.add_argument("model", help="run folder (from `mtrec train`) or .keras file")
    p.add_argument("--config", help="run config YAML (default: the run folder's "
                                    "config.yaml)")
    _add_overrides(p)
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser(
        "export", help="export a .keras model as a SavedModel",
        description="Export a .keras model as a SavedModel, written whole (in a "
                    "temporary sibling folder, renamed into place). Into a TF Serving "
                    "base folder (one holding version folders 1/, 2/, ...), the "
                    "export is the next version.")
    p.add_argument("model", help=".keras file or run folder")
    p.add_argument("output", help="SavedModel folder to write, or a TF Serving base "
                                  "folder (gets the next version)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing export in OUTPUT (only once the new one "
                        "is complete); TF Serving versions are never replaced")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("data", help="data tools: mtrec data shard ...")
    data_commands = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND",
                                     required=True)
    from mtrec.data.shard_writer import add_shard_parser
    add_shard_parser(data_commands)

    p = commands.add_parser("predict", help="score a CSV or Parquet file")
    p.add_argument("model", help=".keras file, run folder or SavedModel folder")
    p.add_argument("input", help="input .csv or .parquet with the model's feature "
                                 "columns")
    p.add_argument("output", help="output .csv or .parquet: the input columns plus "
                                  "one column <task>_prediction per task "
                                  "(<task>_prediction_<k> per class)")
    p.add_argument("--batch-size", type=int, default=4096, help="rows per batch "
                                                                "(default 4096)")
    p.add_argument("--chunk-rows", type=int, default=262_144,
                   help="rows read, validated and written at a time, so files larger "
                        "than memory can be scored (default 262144)")
    p.set_defaults(func=cmd_predict)
    return parser


def cmd_train(args):
    from mtrec.experiments import runner
    from mtrec.experiments.config import load_config_sections

    from mtrec.training.callbacks import TrainingDiverged

    config, extra = load_config_sections(args.config, args.overrides)
    if "tune" in extra:
        print("Training the config as it is; its tune section is for mtrec tune.",
              flush=True)
    if args.local_workers:
        return _train_on_local_workers(args, config)
    try:
        runner.train(config, output_dir=args.output, overwrite=args.overwrite,
                     resume=args.resume)
    except TrainingDiverged as error:
        print(f"mtrec train: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def _train_on_local_workers(args, config):
    """`mtrec train --local-workers N`: the same command in N processes."""
    from mtrec.experiments import run_folder
    from mtrec.training import distribution

    output = args.output or config.output_dir
    if output is None:  # one folder for all: named here, not by each worker
        output = str(run_folder.default_output_dir(
            config, run_folder.config_fingerprint(config)))
    argv = ["train", str(args.config), "--output", str(output)]
    for override in args.overrides:
        argv += ["--set", override]
    argv += (["--overwrite"] if args.overwrite else []) + \
            ([] if args.resume else ["--restart"])
    print(f"Starting {args.local_workers} workers on 127.0.0.1 (worker 0 is the "
          f"chief and writes {output})", flush=True)
    return distribution.run_local_workers(argv, args.local_workers)


def cmd_validate(args):
    from mtrec.experiments.config import (ConfigError, dataset_file_problems,
                                          load_config_sections)

    config, extra = load_config_sections(args.config, args.overrides)
    problems = dataset_file_problems(config)
    if problems:
        raise ConfigError(problems, source=args.config)
    tune = ""
    if "tune" in extra:
        from mtrec.tuning.space import parse_tune
        spec = parse_tune(extra["tune"], config, source=args.config)
        tune = (f"; tune: {spec.direction} {spec.metric} over {len(spec.space)} "
                f"parameter(s) ({', '.join(p.key for p in spec.space)}), sampler "
                f"{spec.sampler['name']}, pruner {spec.pruner['name']}"
                f"{f', {spec.trials} trials' if spec.trials else ''}")
    model_args = ", ".join(f"{k}={v}" for k, v in config.model.args.items())
    if config.dataset.files is None:
        data_args = ", ".join(f"{k}={v}" for k, v in config.dataset.args.items())
        data = f"dataset {config.dataset.name}({data_args})"
    else:
        data = (f"files {config.dataset.split_files()} with tasks "
                f"{list(config.dataset.tasks)}")
    print(f"{args.config}: valid. {data}, "
          f"model {config.model.name}({model_args}), "
          f"up to {config.training.epochs} epochs, output "
          f"{config.output_dir or 'runs/<dataset>-<model>-<timestamp>'}{tune}")
    return 0


def cmd_tune(args):
    from mtrec.tuning.study import tune

    tune(args.config, trials=args.trials, output_dir=args.out, overrides=args.overrides)
    return 0


def cmd_evaluate(args):
    from mtrec.evaluation.tables import format_table
    from mtrec.experiments import runner
    from mtrec.experiments.config import load_config

    config_path = args.config
    if config_path is None:
        model_path = Path(args.model)
        folder = model_path if model_path.is_dir() else model_path.parent
        config_path = folder / "config.yaml"
        if not config_path.is_file():
            raise ValueError(f"No --config given and no config.yaml beside "
                             f"{args.model}; pass --config CONFIG.yaml.")
    config = load_config(config_path, args.overrides)
    model = runner.load_model(args.model)
    report, data = runner.evaluate_run(model, config)
    rows = data.rows("test") if hasattr(data, "rows") else len(data.test)
    print(f"Test set of {config.dataset.label} ({rows} rows), "
          f"{type(model).__name__} from {args.model}:")
    print(format_table(report))
    return 0


def cmd_export(args):
    from mtrec.export import export_for_serving, load_model, next_version, saved_model
    from mtrec.export.saved_model import check_export_target, is_serving_base

    if is_serving_base(args.output):
        # Checked before the model loads, so a refusal costs nothing.
        if args.overwrite:
            raise ValueError(
                f"{args.output} is a TF Serving base folder, whose versions are "
                f"never replaced; drop --overwrite to write version "
                f"{next_version(args.output)}.")
        model = load_model(args.model)
        path = export_for_serving(model, args.output)
        what = f"TF Serving version {path.name} at {path}"
    else:
        check_export_target(args.output, overwrite=args.overwrite)
        model = load_model(args.model)
        path = saved_model(model, args.output, overwrite=args.overwrite)
        what = f"SavedModel {path}"
    print(f"Exported {args.model} to {what} (serving_default: raw "
          f"features in, {{{', '.join(model.task_names)}}} out)")
    return 0


def cmd_predict(args):
    from mtrec.export.file_scoring import predict_file

    predict_file(args.model, args.input, args.output, batch_size=args.batch_size,
                 chunk_rows=args.chunk_rows)
    return 0


def main(argv=None):
    """Run the `mtrec` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    try:
        return args.func(args)
    except KeyboardInterrupt as interrupt:  # TrainingInterrupted says where it saved
        print(f"mtrec: {interrupt or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - one clear line, no traceback
        if os.environ.get("MTREC_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if not isinstance(error, (ValueError, OSError)):
            message = f"{type(error).__name__}: {message}"
        print(f"mtrec {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
