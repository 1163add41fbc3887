"""The one exception type that scripts turn into a single `error: ...` line and exit code 2."""


class UserError(Exception):
    """A foreseeable mistake in the user's input or environment (bad flag, missing data, no CUDA)."""
