"""The `avca` console script: one subcommand per module in avca_tf.commands."""
import argparse
import contextlib
import importlib
import os
import re
import sys
import tempfile

from avca_tf.errors import AvcaError, did_you_mean

# name -> module under avca_tf.commands; imported lazily so `avca synth` does
# not pay for TFX imports.
SUBCOMMANDS = {
    "synth": "synth",
    "inspect": "inspect",
    "train": "train",
    "evaluate": "evaluate",
    "stats": "stats",
    "ingest": "ingest",
    "extract": "extract",
    "embed-classes": "embed_classes",
    "export": "export",
    "reproduce": "reproduce",
    "tsne": "tsne",
    "pipeline": "pipeline",
}

HELP = {
    "synth": "write a benchmark (real splits or toy) in the published on-disk layout",
    "inspect": "validate a benchmark and print a per-stage table",
    "train": "train a model with the two-stage GZSL protocol",
    "evaluate": "recompute test metrics of a finished run",
    "stats": "parameters and FLOPs per model and feature set",
    "ingest": "Beam job: h5 features to TFRecords",
    "extract": "Beam job: video files to audio/video features (published layouts)",
    "embed-classes": "Beam job: class names to label embeddings",
    "export": "export a run as a TF Serving SavedModel",
    "reproduce": "regenerate a table of the paper on your features",
    "tsne": "t-SNE figure of input and learnt embeddings",
    "pipeline": "TFX pipeline: run, compile for Kubeflow, show MLMD",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse as the tools people know: no prefix matching (`--epoch` is not `--epochs`),
    "did you mean" for unknown flags and values, and an unknown flag reported by the
    (sub)command that was given it, with that command's usage. Subcommand parsers
    (add_subparsers) are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error("unrecognized arguments: " + " ".join(extras))
        return namespace, extras

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{self._hint(message)}\n")

    def _hint(self, message: str) -> str:
        choice = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)$", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        if message.startswith("unrecognized arguments: "):
            flags = [a.split("=")[0] for a in message.split(": ", 1)[1].split()
                     if a.startswith("--")]
            for flag in flags:
                hint = did_you_mean(flag, self._option_string_actions)
                if hint:
                    return hint
        return ""


def _load(name):
    return importlib.import_module(f"avca_tf.commands.{SUBCOMMANDS[name]}")


def build_parser(argv):
    parser = ArgumentParser(prog="avca", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name in SUBCOMMANDS:
        p = sub.add_parser(name, help=HELP[name], description=HELP[name])
        if name == wanted:  # only the chosen command's module is imported
            _load(name).add_arguments(p)
    return parser


# TensorFlow's start-up lines that say nothing to act on; printed by absl before
# TF_CPP_MIN_LOG_LEVEL takes effect, so they are filtered out of stderr instead.
TF_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub\.cc|cuda_platform\.cc.*cuInit|"
    r"cuda_(dnn|fft|blas)\.cc.*Unable to register|computation_placer\.cc|"
    r"port\.cc.*oneDNN custom operations|cpu_feature_guard\.cc|"
    r"^To enable the following instructions|rebuild TensorFlow with the appropriate compiler")


@contextlib.contextmanager
def filtered_stderr(pattern=TF_NOISE):
    """Inside: file descriptor 2 goes to a temporary file; on leaving, its lines that do
    not match `pattern` are written to the real stderr (C++ logging included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not pattern.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def quiet_tensorflow_start() -> None:
    """Imports TensorFlow and lists its devices (where CUDA start-up logs) with TF's
    start-up noise filtered, unless TF_CPP_MIN_LOG_LEVEL asks for info lines (0 or 1)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("0", "1"):
        return
    with filtered_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        module = _load(args.command)
        if hasattr(module, "check"):  # argument checks that need no TensorFlow
            module.check(args)
        if getattr(module, "USES_TENSORFLOW", True):
            quiet_tensorflow_start()
        return int(module.run(args) or 0)
    except AvcaError as e:
        if os.environ.get("AVCA_DEBUG") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # disk full / over quota, from Python, h5py or TensorFlow
        problem = disk_full(e)
        if problem is None or os.environ.get("AVCA_DEBUG") == "1":
            raise
        print(f"error: {problem}; free some space (or write elsewhere) and run again; the "
              "output being written was not published", file=sys.stderr)
        return 2


def disk_full(e: BaseException):
    """'no space left on device writing FILE' when `e` (or what caused it) is ENOSPC/EDQUOT."""
    import errno
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"no space left on device writing {e.filename}" if e.filename else \
                "no space left on device"
        text = str(e)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return f"no space left on device ({text.strip().splitlines()[0][:300]})"
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
