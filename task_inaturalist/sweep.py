"""Part A's hyperparameter sweep with optuna: a seeded TPE sampler, a median pruner on the validation
accuracy of every epoch, and a study kept in a database, so that the same command continues it.

- Storage: a SQLite file in the sweep folder by default (`sqlite:///<out>/study.db`); `--storage
  postgresql://user@host/db` lets several machines work on one study, each running the same command.
  Heartbeats mark the trials of a killed worker as failed, so they do not stay "running" forever.
- --trials N is the study's total: each worker runs trials until N have finished (complete or pruned),
  so running the command again continues an interrupted sweep, and two workers share the N.
- Each trial trains a CNN for --epochs on the train split, is judged on the validation split only (its
  best epoch), and writes <out>/trials/<number>/history.csv. The test set is never touched here.
- Outputs, written again from the database by every worker when it stops: trials.csv, best_config.json
  (the best trial's parameters, for `train.py --config`), optimization_history.png,
  param_importances.png, parallel_coordinate.png, and metrics.json last.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Callable

try:  # --sweep alone needs optuna (and its SQLAlchemy): parts A and B run on a machine without them
    import optuna
    import sqlalchemy
except ImportError:
    optuna = sqlalchemy = None

from common import distributed
from common.cli import int_in, positive_float, stopped_at
from common.data import ImageData
from common.errors import Interrupted, TrainingDiverged, UserError
from common.files import atomic_write, read_json, write_json
from common.plots import plt
from common.run import REPO_ROOT, RunFolder, write_skipped
from common.runtime import seed_everything, start
from common.secrets import hide_url
from common.tables import write_csv
from task_inaturalist.cnn import (
    ACTIVATIONS,
    ORGANISATIONS,
    PADDINGS,
    build_cnn,
    min_image_size,
    parameter_count,
    total_macs,
)
from task_inaturalist.data import load_on_device
from task_inaturalist.recipe import ORIGINAL_BEST, PARAM_KEYS, augmentation, cnn_config, train_config

# The original's search space (filters {16, 32, 64} and beyond: 128 too), every key used by recipe.cnn_config and
# train_config.
FILTERS = (16, 32, 64, 128)
KERNELS = (3, 4, 5)
DENSE = (32, 64, 128)
BATCH_SIZES = (32, 64, 128)
WEIGHT_DECAYS = (0.0, 1e-4, 5e-4, 1e-3, 5e-3)  # 0 included: the original crashed on it
VALID_MIN_SIZE = min_image_size(cnn_config({**ORIGINAL_BEST, "kernel": min(KERNELS), "padding": "valid"}))  # 94 px


def paddings(image_size: int) -> tuple[str, ...]:
    """The padding choices at this image size: valid padding makes every feature map vanish below
    VALID_MIN_SIZE whatever the kernel, so small inputs (learning checks at 32 px) sample "same" only."""
    return PADDINGS if image_size >= VALID_MIN_SIZE else ("same",)


def as_params(sampled: dict) -> dict:
    """A trial's sampled values as part A's configuration (recipe's shape: filters as a list)."""
    return {k: [sampled[k]] if k == "filters" and k in sampled else sampled.get(k) for k in PARAM_KEYS}


def sample(trial: optuna.Trial, image_size: int = 224) -> dict:
    """One configuration from the search space, as the flat dict of recipe.PARAM_KEYS."""
    params = {
        "filters": [trial.suggest_categorical("filters", FILTERS)],  # one count, organised: recipe's one shape
        "organisation": trial.suggest_categorical("organisation", ORGANISATIONS),
        "kernel": trial.suggest_categorical("kernel", KERNELS),
        "padding": trial.suggest_categorical("padding", paddings(image_size)),
        "bias": trial.suggest_categorical("bias", (True, False)),
        "activation": trial.suggest_categorical("activation", ACTIVATIONS),
        "batch_norm": trial.suggest_categorical("batch_norm", (True, False)),
        "dropout": trial.suggest_float("dropout", 0.1, 0.6),
        "dense": trial.suggest_categorical("dense", DENSE),
        "augment": trial.suggest_categorical("augment", (True, False)),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_categorical("weight_decay", WEIGHT_DECAYS),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "optimizer": trial.suggest_categorical("optimizer", ("adam", "sgd")),
    }
    return params


def storage_url(args: argparse.Namespace, out: Path) -> str:
    """--storage, else $OPTUNA_STORAGE (a password there stays off the command line and out of `ps`), else a
    SQLite file in the sweep folder."""
    url = args.storage or os.environ.get("OPTUNA_STORAGE") or f"sqlite:///{(out / 'study.db').resolve()}"
    # SQLAlchemy 2.1 connects a bare postgresql:// with psycopg 3; requirements.txt installs psycopg2
    return "postgresql+psycopg2://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def open_study(args: argparse.Namespace, out: Path) -> optuna.Study:
    """The study (created, or loaded if it exists) with a median pruner and a TPE sampler seeded for this
    continuation of it (sampler_offset)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happens to each trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(args, out)
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            # Workers started together on a fresh database all create optuna's tables (CREATE TABLE is not
            # atomic in PostgreSQL): the losers try again and find the tables made. The wait depends on the
            # process, not on --seed, which every worker shares.
            if attempt == 4:
                raise UserError(f"--storage {hide_url(url)}: could not create the study's tables "
                                f"({type(e).__name__}); run the command again") from None
            time.sleep(0.5 + (os.getpid() % 997) / 997)
        except Exception as e:  # a bad URL, a server that does not answer, a missing driver
            raise UserError(f"--storage {hide_url(url)}: cannot open the study database ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]})") from None
    pruner = optuna.pruners.MedianPruner(n_startup_trials=args.prune_startup, n_warmup_steps=args.prune_after)
    study = optuna.create_study(study_name=args.study_name, storage=storage, pruner=pruner, direction="maximize",
                                load_if_exists=True)
    study.sampler = optuna.samplers.TPESampler(seed=args.seed + sampler_offset(study, args))  # needs the trials
    return study


def finished(study: optuna.Study) -> int:
    """Trials that count towards --trials: complete or pruned (infeasible ones are failed)."""
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                         optuna.trial.TrialState.PRUNED)))


# What makes trials comparable: a study continues only with the same data, image size and epochs.
STUDY_KEYS = ("dataset", "subset", "image_size", "epochs", "val_fraction")


def check_study(study: optuna.Study, args: argparse.Namespace) -> None:
    """Record the study's STUDY_KEYS when it is new; refuse, in one line, to continue it with others."""
    ours = {k: getattr(args, k) for k in STUDY_KEYS}
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", ours)
        return
    changed = [k for k in STUDY_KEYS if saved.get(k) != ours[k]]
    if changed:
        raise UserError(f"study {args.study_name!r} was run with " + ", ".join(
            f"--{k.replace('_', '-')} {saved.get(k)}" for k in changed) + "; its trials are comparable only under "
            "the same settings: use them, or another --study-name or --out")


def sampler_offset(study: optuna.Study, args: argparse.Namespace) -> int:
    """A different sampler seed for every continuation of the study and, on a server, for every worker:
    a re-seeded TPE would otherwise draw its first random configurations again."""
    who = "" if args.storage is None else f"{socket.gethostname()}:{os.getpid()}"
    key = f"{len(study.trials)}:{who}".encode()
    return int(hashlib.sha256(key).hexdigest()[:6], 16) if len(study.trials) or who else 0


class Infeasible(Exception):
    """A sampled architecture that cannot run at this image size (a feature map vanishes) or is over the
    --max-macs budget. Its trial is stored as failed, with the reason: it does not count towards --trials,
    nor towards TPE's random start-up trials (pruned ones would), so the start-up explores real ones."""


def objective(trial: optuna.Trial, data: ImageData, args: argparse.Namespace, folder: RunFolder) -> float:
    """Train one sampled configuration; its best validation accuracy. Pruned by the median rule after
    any epoch, or when its loss diverges. An architecture that cannot run at this image size (a feature map
    vanishes) or is over --max-macs fails at once as Infeasible. The reason goes to the trial's user
    attributes (trials.csv's "note")."""
    image_size = data.train.images.shape[-1]
    params = sample(trial, image_size)
    cnn = cnn_config(params)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    seed_everything(args.seed + trial.number)  # the initial weights depend on the seed and the parameters only
    try:
        model = build_cnn(cnn, image_size)
        macs = total_macs(cnn, image_size)
        if args.max_macs is not None and macs > args.max_macs:
            raise UserError(f"{macs:,} MACs per image, over --max-macs {args.max_macs:,.0f}")
    except UserError as e:
        trial.set_user_attr("note", f"infeasible: {e}")
        print(f"trial {trial.number}: skipped, infeasible at {image_size} px ({e})", flush=True)
        raise Infeasible(str(e)) from None
    trial.set_user_attr("params_count", parameter_count(cnn, image_size))
    trial.set_user_attr("macs", macs)
    run = folder.sub(f"trials/{trial.number:04d}", seed=args.seed + trial.number).make_folder()
    write_json(run.path / "params.json", params)
    cfg = train_config(params, args.epochs, warmup_epochs=args.warmup_epochs, eval_batch_size=args.eval_batch_size,
                       save_checkpoints=False)
    best = 0.0

    def report(row: dict) -> None:
        nonlocal best
        best = max(best, row["val_acc"])
        trial.report(row["val_acc"], row["epoch"])
        if trial.should_prune():
            trial.set_user_attr("note", f"pruned after epoch {row['epoch']} (median rule)")
            raise optuna.TrialPruned()

    print(f"trial {trial.number}: {json.dumps(params)}", flush=True)
    try:
        run.fit(model, data, cfg, augment=augmentation(params["augment"]), after_epoch=report)
    except TrainingDiverged as e:
        trial.set_user_attr("note", f"diverged: {stopped_at(e)}")
        raise optuna.TrialPruned(str(e)) from None
    return best


# ----------------------------------------------------------------------------- the flags
def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    s = parser.add_argument_group("the sweep (--sweep)")
    s.add_argument("--trials", type=int_in(1, 100_000), default=20, help="the study's total of finished trials")
    s.add_argument("--storage", default=None, metavar="URL",
                   help="the study's database, e.g. postgresql://user:password@host/db for many workers (default: "
                        "$OPTUNA_STORAGE if set, which keeps a password off the command line, else "
                        "sqlite:///<out>/study.db)")
    s.add_argument("--study-name", default="inaturalist-cnn", help="the study's name in its database")
    s.add_argument("--prune-startup", type=int_in(0, 100_000), default=3,
                   help="trials before the median pruner may prune")
    s.add_argument("--prune-after", type=int_in(0, 100_000), default=1,
                   help="epochs a trial runs before it may be pruned")
    s.add_argument("--max-macs", type=positive_float, default=None,
                   help="skip sampled architectures above this many multiply-accumulates per image, a CPU budget "
                        "(default: none, no limit)")


# ----------------------------------------------------------------------------- outputs
def write_trials_csv(study: optuna.Study, path: Path) -> list[dict]:
    """Every trial of the study, one row each, numbered by the database: no duplicates across workers."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append({"number": t.number, "state": t.state.name, "val_acc": t.value,
                     "epochs_run": len(t.intermediate_values), "seconds": round(seconds, 1) if seconds else None,
                     "worker": t.user_attrs.get("worker"), "params_count": t.user_attrs.get("params_count"),
                     "macs": t.user_attrs.get("macs"), "note": t.user_attrs.get("note", ""),
                     **as_params(t.params)})
    write_csv(path, rows, list(rows[0]) if rows else ["number"])  # atomic, under a name of this writer's own
    return rows


def save_figure(fig, path: Path) -> None:
    """A figure as PNG, atomically: two workers of one study may write the same plot at the same time."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def _save(ax_or_axes, path: Path, width: float = 10) -> None:
    first = ax_or_axes.flat[0] if hasattr(ax_or_axes, "flat") else ax_or_axes
    fig = first.figure
    fig.set_size_inches(max(fig.get_size_inches()[0], width), max(fig.get_size_inches()[1], 5))
    fig.tight_layout()
    save_figure(fig, path)


def _placeholder(path: Path, title: str, why: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\n{why}", ha="center", va="center", fontsize=12)
    save_figure(fig, path)


def write_plots(study: optuna.Study, out: Path) -> None:
    """optuna's matplotlib plots; where one cannot be drawn yet (too few finished trials), a PNG that
    says why, so the folder always has its three PNGs."""
    from optuna.visualization import matplotlib as ovm

    plots = {"optimization_history.png": ovm.plot_optimization_history,
             "param_importances.png": ovm.plot_param_importances,
             "parallel_coordinate.png": ovm.plot_parallel_coordinate}
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for its matplotlib backend
        for name, plot in plots.items():
            title = name[:-4].replace("_", " ")
            if complete < 2:
                _placeholder(out / name, title, f"needs 2 complete trials; the study has {complete}")
                continue
            try:
                _save(plot(study), out / name, width=1.3 * len(PARAM_KEYS) + 3 if "parallel" in name else 10)
            except (ValueError, RuntimeError) as e:  # e.g. importances when every trial has one value
                plt.close("all")
                _placeholder(out / name, title, f"not available: {e}")


def write_outputs(study: optuna.Study, out: Path, args: argparse.Namespace, image_size: int) -> dict:
    rows = write_trials_csv(study, out / "trials.csv")
    write_plots(study, out)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    counts = {s.name.lower(): sum(r["state"] == s.name for r in rows) for s in optuna.trial.TrialState}
    counts["infeasible"] = sum(r["note"].startswith("infeasible") for r in rows)
    counts["fail"] -= counts["infeasible"]
    summary = {"study": args.study_name, "storage": hide_url(storage_url(args, out)), "trials": counts}
    if complete:
        best = study.best_trial
        config = {"params": as_params(best.params), "best_val_acc": best.value, "trial": best.number,
                  "study": args.study_name, "dataset": args.dataset, "image_size": image_size,
                  "epochs": args.epochs, "seed": args.seed}
        write_json(out / "best_config.json", config)
        summary |= {"best_val_acc": best.value, "best_trial": best.number, "best_params": as_params(best.params)}
    write_json(out / "metrics.json", summary)  # last: the folder is complete for what the study holds now
    return summary


def run_sweep(args: argparse.Namespace, data: ImageData, folder: RunFolder,
              write_config: Callable[[], object]) -> dict:
    """Run trials until the study has args.trials finished ones; then write the outputs. `write_config` is
    called once the study has accepted these settings (a refused command changes nothing)."""
    out = folder.path
    study = open_study(args, out)
    check_study(study, args)
    write_config()
    done = finished(study)
    todo = max(0, args.trials - done)
    print(f"study {args.study_name!r} at {hide_url(storage_url(args, out))}: {done} of {args.trials} trials "
          f"finished{'; running the rest' if todo else '; nothing to run (raise --trials for more)'}", flush=True)
    if todo:
        attempts = 0

        def stop_when_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal attempts
            attempts += 1  # infeasible samples do not count, but cannot go on forever either
            if finished(study) >= args.trials or attempts >= 20 * todo:
                study.stop()

        try:
            study.optimize(lambda trial: objective(trial, data, args, folder), callbacks=[stop_when_done],
                           catch=(Infeasible,), gc_after_trial=True)
        except Interrupted as e:  # optuna has marked the running trial failed; the finished ones are stored
            write_outputs(study, out, args, data.train.images.shape[-1])
            raise Interrupted(e.signum, detail=f"{stopped_at(e)}: the sweep stopped; its finished trials are in "
                                               f"the study. Run the same command again to continue it") from None
    summary = write_outputs(study, out, args, data.train.images.shape[-1])
    best = (f"best val_acc {100 * summary['best_val_acc']:.2f}% (trial {summary['best_trial']})"
            if "best_val_acc" in summary else "no complete trial yet")
    n = summary["trials"]
    print(f"sweep: {n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed, {n['infeasible']} infeasible "
          f"at {data.train.images.shape[-1]} px (skipped); {best} -> {out}", flush=True)
    if finished(study) < args.trials:
        print(f"warning: stopped with {finished(study)} of {args.trials} trials finished after {20 * todo} samples: "
              f"this image size{' and --max-macs' if args.max_macs else ''} leave little of the search space; "
              f"the same command goes on", flush=True)
    if "best_val_acc" in summary:
        print(f"retrain the best and test it once: python task_inaturalist/train.py --config "
              f"{out / 'best_config.json'} --dataset {args.dataset} --data-dir {args.data_dir}", flush=True)
    return summary


def check_sweep_flags(args: argparse.Namespace) -> None:
    if optuna is None:
        raise UserError("--sweep needs optuna, which is not installed here: pip install optuna==5.0.0 "
                        "(make setup installs it; parts A and B run without it)")
    if args.resume:
        raise UserError("--sweep continues a study by running the same command again, not with --resume")
    if distributed.launched_by_torchrun():
        raise UserError("--sweep runs one trial at a time in one process: for several GPUs, start one worker per "
                        "GPU (CUDA_VISIBLE_DEVICES=k) on one --storage study instead of torchrun")


def sweep_command(args: argparse.Namespace) -> int:
    """--sweep: the study in --out (default runs/task_inaturalist/sweep), continued by the same command; one
    study per folder. Nothing is written before the study accepts these settings."""
    args.out = args.out or str(REPO_ROOT / "runs" / "task_inaturalist" / "sweep")
    folder = RunFolder.check(args, "task_inaturalist", continued="sweep")
    config = Path(args.out) / "config.json"
    saved = read_json(config).get("study_name") if config.is_file() else None
    if saved not in (None, args.study_name):
        raise UserError(f"--out {args.out} holds the study {saved!r}: one study per folder, so give this study "
                        f"({args.study_name!r}) its own --out")
    device = start(args)
    data = load_on_device(args, device)
    folder.make_folder()
    write_skipped(folder.path, data.skipped)
    run_sweep(args, data, folder, lambda: folder.write_config(device, data, continues="sweep"))
    return 0
