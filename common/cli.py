"""The command line of every script: the shared flags (same names in every task), and `run_main`, which
turns each foreseeable stop into one line on stderr and an exit code.

Every task's train.py / eval.py does `main(argv) -> run_main(build_parser(), run, argv)`.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import shlex
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

from common.errors import Interrupted, TrainingDiverged, UserError
from common.secrets import redact, redact_argv, remember_secrets
from common.text import printable


class HelpFormatter(argparse.HelpFormatter):
    """Every script's --help: each optional argument's help ends with its default, shown once.

    - A help text that says "(default" already states it in words: nothing is added.
    - A required option, a positional argument, a hidden one: nothing.
    - A default of None (or "" or []) means something only its help can say, e.g. `(default: runs/<task>/<date-time>)`:
      nothing is added, so "(default: None)" is never printed (tests/test_help.py checks that each such help says it).
    - Otherwise `(default: X)`, X as typed on the command line: `on`/`off` for a switch, a list space-separated.
    argparse's ArgumentDefaultsHelpFormatter showed a default only where there was help text, and "None" as is."""

    def _format_action(self, action: argparse.Action) -> str:
        text = help_with_default(action)
        if text != action.help:
            action = copy.copy(action)
            action.help = text
        return super()._format_action(action)

    def _split_lines(self, text: str, width: int) -> list[str]:  # a flag or path is never cut at its hyphen
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def help_with_default(action: argparse.Action) -> str | None:
    """`action`'s help text with `(default: X)` appended, by HelpFormatter's rule."""
    text, default = action.help or "", action.default
    if (not action.option_strings or action.required or text == argparse.SUPPRESS or "(default" in text
            or default is argparse.SUPPRESS or default is None or default == "" or default == []):
        return action.help
    if isinstance(default, bool):
        shown = "on" if default else "off"
    elif isinstance(default, (list, tuple)):
        shown = " ".join(map(str, default))
    else:
        shown = str(default)
    return f"{text} (default: {shown.replace('%', '%%')})".lstrip()  # help texts are %-formatted by argparse


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line (no usage block) and exit code 2; help by HelpFormatter."""

    task = ""  # the task folder, for checkpoints and the resume command
    # before_parse(parser, argv): a script's chance to set defaults from a file named in argv (--config)
    before_parse: Callable[["Parser", list[str]], None] | None = None

    def __init__(self, *args: Any, formatter_class: type = HelpFormatter, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (a bound on what a value may ask of memory and time)."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low:,} to {high:,}, got {text}")
        return value
    parse.__name__ = f"integer from {low} to {high}"  # argparse's "invalid <name> value" message
    return parse


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# Upper bounds of the sizes a flag, a --config file, a config.json or a checkpoint may ask for: each is far
# above any sensible run, and far below a size that would exhaust memory before anything useful happens.
MAX_BATCH = 1 << 16
MAX_IMAGE_SIZE = 1024
MAX_EPOCHS = 100_000
batch_int = int_in(1, MAX_BATCH)
image_size_int = int_in(8, MAX_IMAGE_SIZE)
epochs_int = int_in(1, MAX_EPOCHS)
seed_int = int_in(0, 2**32 - 1)  # numpy's seeds stop there


def base_parser(task: str, description: str, *, epochs: int, batch_size: int, lr: float,
                dataset: str = "cifar10") -> Parser:
    """A parser with the shared flags, same names in every task (docs/DEVELOPING.md, the README's run folder)."""
    from common.data import DATASETS

    p = Parser(prog=f"{task}/train.py", description=description)
    p.task = task
    p.add_argument("--epochs", type=epochs_int, default=epochs, help="training epochs")
    p.add_argument("--batch-size", type=batch_int, default=batch_size,
                   help="images per optimiser step (under torchrun, over all processes)")
    p.add_argument("--lr", type=positive_float, default=lr, help="peak learning rate")
    p.add_argument("--seed", type=seed_int, default=0, help="seeds weights, split, shuffling and augmentation")
    p.add_argument("--dataset", choices=DATASETS, default=dataset, help="what to train and test on")
    p.add_argument("--data-dir", default="data",
                   help="dataset folder (Fashion-MNIST: /usr/share/datasets/fashion-mnist)")
    p.add_argument("--out", default=None, help=f"run folder (default: runs/{task}/<date-time>)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda if torch sees a GPU, else cpu")
    p.add_argument("--subset", type=positive_int, default=None,
                   help="cap train and test at N images (smoke runs); the val split shrinks with it "
                        "(default: none, every image)")
    p.add_argument("--val-size", type=positive_int, default=5000, help="images held out of train for validation")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA, off on the CPU: a oneDNN bug there, "
                        "see docs/RELIABILITY.md)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run (its folder, or a last.pt in it) with the flags it was started "
                        "with: complete sub-runs are kept, the interrupted one continues, the rest run "
                        "(default: none, a new run)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds (without it, a folder that holds a run is never changed)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms only (bit-identical reruns and resumes; slower on CUDA)")
    return p


def add_sgd_flags(group: argparse._ActionsContainer, *, warmup_epochs: float, label_smoothing: float = 0.0,
                  warmup_help: str = "linear warm-up, per step", grad_clip: float = 0.0,
                  grad_clip_help: str = "clip the global gradient norm to this; 0 = off") -> None:
    """The SGD recipe's flags, same names and meaning in every task: --momentum --nesterov --weight-decay
    --warmup-epochs --label-smoothing --grad-clip (each task's default, and why, in its help)."""
    group.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum")
    group.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True, help="Nesterov momentum")
    group.add_argument("--weight-decay", type=non_negative_float, default=5e-4,
                       help="weight decay of the weights (not biases or norm gains)")
    group.add_argument("--warmup-epochs", type=non_negative_float, default=warmup_epochs, help=warmup_help)
    group.add_argument("--label-smoothing", type=non_negative_float, default=label_smoothing,
                       help="cross-entropy label smoothing; 0 = off")
    group.add_argument("--grad-clip", type=non_negative_float, default=grad_clip, help=grad_clip_help)


def aspect_ratio(text: str) -> float:
    """An argparse type: a finite number >= 1, the long side over the short side of a photo."""
    value = finite_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (1 is a square), got {text}")
    return value


def add_max_pixels_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--max-pixels and --max-aspect, the limits that bound the work and memory of one photo, for the tasks that
    read photos from folders (common.folders). eval.py takes them from its own flags
    (common.evaluation.SAFETY_LIMITS)."""
    from common.folders import MAX_ASPECT_RATIO, MAX_PIXELS

    parser.add_argument("--max-pixels", type=positive_int, default=MAX_PIXELS,
                        help="skip (and name) a photo whose header gives more pixels than this, before decoding it: "
                             f"bounded memory whatever the folder holds (default: {MAX_PIXELS}, PIL's "
                             "decompression-bomb limit)")
    parser.add_argument("--max-aspect", type=aspect_ratio, default=MAX_ASPECT_RATIO,
                        help="skip (and name) a photo whose long side is more than this many times its short side, "
                             "before decoding it: squashing it to the image size costs memory and time in "
                             "proportion to the long side (a 19 kB PNG of 1 x 10,000,000 px would take 6.7 GB), "
                             f"which the pixel limit alone does not bound (default: {MAX_ASPECT_RATIO:g}, which no "
                             "camera frame or phone panorama comes near)")
    return parser


def update_flag(parser: argparse.ArgumentParser, dest: str, **changes: Any) -> None:
    """Change a shared flag's choices, default or help for one task (base_parser defines it for CIFAR)."""
    for action in parser._actions:
        if action.dest == dest:
            for key, value in changes.items():
                setattr(action, key, value)
            if "default" in changes:
                parser.set_defaults(**{dest: changes["default"]})
            return
    raise KeyError(dest)


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict:
    """The flags given on the command line (not their defaults), parsed: dest -> value."""
    missing = object()
    ns = argparse.Namespace(**{a.dest: missing for a in parser._actions})  # argparse skips defaults it sees set
    parser.parse_args(argv, ns)
    return {k: v for k, v in vars(ns).items() if v is not missing}


def _long_flag(action: argparse.Action) -> str:
    return next((o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")),
                action.option_strings[0])


def values_as_argv(parser: argparse.ArgumentParser, values: dict, source: str) -> list[str]:
    """`values` (dest -> a JSON value) as the command-line tokens that would set them; a value of the wrong
    kind (a string for a switch, a list for a number, null for a flag that needs a value) is one error."""
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    tokens: list[str] = []
    for dest, value in values.items():
        action = actions.get(dest)
        if action is None or action.dest == "help":
            continue
        flag = _long_flag(action)
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):  # a switch
            if value is None and action.default is None:
                continue
            if not isinstance(value, bool):
                raise UserError(f"{source}: {dest} must be true or false, got {value!r:.40}")
            if isinstance(action, argparse.BooleanOptionalAction):
                tokens.append(flag if value else "--no-" + flag[2:])
            elif value != bool(action.default):
                if action.const is not True:  # store_false and the like: no JSON value maps onto them
                    raise UserError(f"{source}: {dest} cannot be set from a file")
                tokens.append(flag)
            continue
        if value is None:
            if action.default is not None:
                raise UserError(f"{source}: {dest} needs a value ({flag}), got null")
            continue
        many = action.nargs in ("+", "*") or isinstance(action.nargs, int)
        items = value if many and isinstance(value, list) else [value]
        if not many and isinstance(value, list) or not items or \
                any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in items):
            raise UserError(f"{source}: {dest} holds {value!r:.40}, which is not what {flag} takes")
        try:
            texts = [str(v) for v in items]
        except ValueError:  # an integer of thousands of digits
            raise UserError(f"{source}: {dest} is not a sensible number (thousands of digits)") from None
        tokens += [flag, *texts] if many else [f"{flag}={texts[0]}"]
    return tokens


def checked_values(parser: argparse.ArgumentParser, values: dict, source: str) -> dict:
    """`values` (from a --config file, a config.json or a checkpoint's args) through the same validators as
    the flags, in one place: the returned dest -> value has the flags' types, and a value no flag would take
    (NaN, a string for a switch, a size beyond the flag's bound) is one error line naming `source`."""
    tokens = values_as_argv(parser, values, source)
    fresh = Parser(prog=source, add_help=False)  # the same actions, nothing required, errors as UserError
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            fresh._add_action(copy.copy(action))
    for action in fresh._actions:
        action.required = False
    parsed = vars(fresh.parse_args(tokens))
    # A sub-run saves one value of a list flag (--resize 32 224 -> resize: 32): it keeps that shape.
    return {dest: parsed[dest][0] if isinstance(parsed[dest], list) and not isinstance(values[dest], list)
            else parsed[dest] for dest in values if dest in parsed}


def stopped_at(e: Interrupted | TrainingDiverged) -> str:
    """Where a training run stopped, for the start of its one line."""
    if isinstance(e, TrainingDiverged):
        if e.batch is None:
            return f"non-finite {e.what} after epoch {e.epoch}"
        return f"non-finite {e.what} ({e.value}) in epoch {e.epoch}, batch {e.batch}, at lr {e.lr:.4g}"
    name = signal.Signals(e.signum).name
    return f"{name} in epoch {e.epoch}, batch {e.batch}" if e.batch is not None else f"{name} after epoch {e.epoch}"


def stop_line(e: Interrupted | TrainingDiverged, task: str) -> str:
    """The one line of a run that stopped during training: where, what is kept, and the command that
    continues the whole experiment (from the file kept, or from its run folder when it keeps no checkpoints)."""
    if isinstance(e, Interrupted) and e.detail:
        return e.detail
    where = e.kept or e.resume_from
    resume = f". Resume with: {resume_command(where, task)}" if where is not None and task else ""
    if isinstance(e, TrainingDiverged):
        kept = f"{e.kept} (epoch {e.epoch - 1}) is the last good checkpoint, and " if e.kept else ""
        return f"{stopped_at(e)}: training stopped; {kept}no metrics.json was written"
    if e.kept is None:
        return f"{stopped_at(e)}: stopped; this run keeps no checkpoints and starts over{resume}"
    if e.batch is not None:
        return f"{stopped_at(e)}: stopped; the partial epoch is dropped, and {e.kept} holds epoch {e.epoch - 1}{resume}"
    return f"{stopped_at(e)}: stopped; {e.kept} holds it{resume}"


def resume_command(path: Path, task: str) -> str:
    """The exact command that continues the whole experiment that `path` (a run folder or last.pt) is in."""
    from common import distributed

    world = distributed.world_size()
    launcher = f"torchrun --nproc_per_node {world}" if world > 1 else "python"
    return f"{launcher} {task}/train.py --resume {path}"


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
             argv: Sequence[str] | None) -> int:
    """Parse, run, and turn each foreseeable stop into one line on stderr and its exit code: a UserError
    (`error: ...`, 2), a diverged loss (1), Ctrl-C or SIGTERM (`interrupted: ...`, 130 or 143)."""
    from common import distributed
    from common.run import resumed_args

    argv = list(sys.argv[1:] if argv is None else argv)
    remember_secrets(argv, [os.environ.get("OPTUNA_STORAGE")])
    try:
        if getattr(parser, "before_parse", None) is not None:
            parser.before_parse(parser, argv)
        args = parser.parse_args(argv)
        if getattr(args, "resume", None):  # the flags the run was started with, from its config.json
            args = resumed_args(parser, getattr(parser, "task", ""), explicit_flags(parser, argv))
        args.command = shlex.join(["python", parser.prog, *redact_argv(argv)])
        return run(args)
    except (UserError, Interrupted) as e:
        line = stop_line(e, getattr(parser, "task", "")) if isinstance(e, (TrainingDiverged, Interrupted)) else str(e)
        print(f"{e.prefix}: {printable(redact(line))}", file=sys.stderr)  # one line, whatever a name holds
        return e.exit_code
    except KeyboardInterrupt:  # outside the training loop (loading data, the test report): nothing to resume
        print("interrupted: Ctrl-C outside training; the run folder has no metrics.json, so it is not complete",
              file=sys.stderr)
        return 130
    finally:
        distributed.teardown()


def eval_parser(task: str, description: str) -> Parser:
    """The flags every task's eval.py shares: --checkpoint, --data-dir, --out, --device."""
    p = Parser(prog=f"{task}/eval.py", description=description)
    p.task = task
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt or last.pt of a run")
    p.add_argument("--data-dir", default=None, help="the data folder (default: the one stored in the checkpoint)")
    p.add_argument("--out", default=None, help="where to write the PNGs and eval.json (default: the checkpoint's "
                   "folder)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda if torch sees a GPU, else cpu")
    return p
