"""The exceptions that scripts turn into one line on stderr and a non-zero exit code (common.cli.run_main)."""


class UserError(Exception):
    """A foreseeable mistake in the user's input or environment (bad flag, missing data, no CUDA): exit 2."""

    exit_code = 2
    prefix = "error"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept: exit 1."""

    exit_code = 1


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during training: the run stopped cleanly and can be resumed. Exit 128 + signal."""

    prefix = "interrupted"

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
