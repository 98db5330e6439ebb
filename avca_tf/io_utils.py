"""Atomic writes (readers never see a half-written file or directory) and path kinds."""
import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path: str, replace: bool = True):
    """Yields a temporary sibling path; renames it to `path` on success.

    Works for files and directories. On an exception the temporary is removed
    and `path` is left untouched. With `replace=False` an existing `path` is
    never replaced: FileExistsError instead.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    os.rmdir(tmp)  # the caller creates a file or a directory there
    try:
        yield tmp
        if not replace and os.path.lexists(path):
            raise FileExistsError(f"{path} already exists")
        if os.path.isdir(path) and os.path.isdir(tmp):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def json_text(obj) -> str:
    """The JSON form of every file we write: indented, sorted keys, final newline."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(path: str, obj) -> None:
    """Writes `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(json_text(obj))


def is_remote(path: str) -> bool:
    """True for object-store URIs (gs://, s3://, ...)."""
    return "://" in str(path)


def absolute(path: str) -> str:
    """Local paths become absolute (TFX stores URIs); remote URIs stay as they are."""
    return path if is_remote(path) else os.path.abspath(path)
