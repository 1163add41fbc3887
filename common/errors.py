"""The exceptions that scripts turn into one line on stderr and a non-zero exit code (common.cli.run_main).

A stop during training carries what happened (the epoch, the batch, the signal, the LR, the file kept), not a
sentence: common.cli.stop_line words every such message, in one place, beside run_main's error line.
"""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A foreseeable mistake in the user's input or environment (bad flag, missing data, no CUDA): exit 2."""

    exit_code = 2
    prefix = "error"


class TrainingDiverged(UserError):
    """`what` ("loss", "validation loss", "weights") became NaN or infinite in `epoch` (at `batch` and `lr`
    for a training loss, whose `value` it was); `kept` is the last good checkpoint, if the run keeps any: exit 1.
    `resume_from`: the run folder that --resume continues, set by the run that was training."""

    exit_code = 1

    def __init__(self, what: str, epoch: int, *, batch: int | None = None, lr: float | None = None,
                 value: float | None = None, kept: Path | None = None) -> None:
        super().__init__(f"non-finite {what} in epoch {epoch}")
        self.what, self.epoch, self.batch, self.lr, self.value, self.kept = what, epoch, batch, lr, value, kept
        self.resume_from: Path | None = None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped cleanly and can be resumed. Exit 128 + signal.

    During training: the `epoch` (and `batch`, when it stopped inside one; the partial epoch is dropped) and
    the file `kept`. Elsewhere (a download, an unpack), `detail` is the whole message."""

    prefix = "interrupted"

    def __init__(self, signum: int, *, epoch: int | None = None, batch: int | None = None,
                 kept: Path | None = None, detail: str = "") -> None:
        super().__init__(detail)
        self.signum, self.epoch, self.batch, self.kept, self.detail = signum, epoch, batch, kept, detail
        self.exit_code = 128 + signum
        self.resume_from: Path | None = None
