"""Errors a user can act on: the CLI prints the message and exits non-zero."""


class AvcaError(Exception):
    """Base class for user-facing errors (bad input, bad configuration)."""


class BenchmarkError(AvcaError, ValueError):
    """A benchmark file or folder is missing, malformed or inconsistent."""


class ConfigError(AvcaError, ValueError):
    """A configuration or run directory does not fit the request."""


class TrainingDivergedError(AvcaError, FloatingPointError):
    """The loss became NaN or Inf (usually a learning rate far too large)."""
