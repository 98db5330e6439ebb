"""Errors a user can act on: the CLI prints the message and exits non-zero."""


class AvcaError(Exception):
    """Base class for user-facing errors (bad input, bad configuration)."""


class BenchmarkError(AvcaError, ValueError):
    """A benchmark file or folder is missing, malformed or inconsistent."""


class ConfigError(AvcaError, ValueError):
    """A configuration or run directory does not fit the request."""


class TrainingDivergedError(AvcaError, FloatingPointError):
    """The loss became NaN or Inf (usually a learning rate far too large)."""


def did_you_mean(value, choices) -> str:
    """' (did you mean X?)' for the choice closest to `value` (same word in another case,
    a prefix of one choice, or a near spelling); '' when nothing is close."""
    import difflib
    text, names = str(value), [str(c) for c in choices]
    match = ([c for c in names if c.lower() == text.lower()]
             or difflib.get_close_matches(text, names, n=1, cutoff=0.6)
             or ([c for c in names if c.startswith(text)] if len(text) >= 3 else []))
    return f" (did you mean {match[0]}?)" if len(match) >= 1 and match[0] != text else ""
