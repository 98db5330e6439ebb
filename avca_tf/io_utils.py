"""Atomic writes (readers never see a half-written file or directory) and path kinds."""
import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# the temporaries atomic_path makes: ".<name>.tmp-XXXX" and ".<name>.old-XXXX"
TEMPORARY = re.compile(r"^\..+\.(tmp|old)-[A-Za-z0-9_]{8}$")


def _exchange(a: str, b: str) -> bool:
    """Swaps two existing paths in one step (Linux renameat2 RENAME_EXCHANGE).
    False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def _replace_dir(tmp: str, path: str) -> None:
    """Puts the directory `tmp` at `path`, which holds an older directory; the old one ends
    up at `tmp` (removed by the caller). At every instant `path` is the old or the new
    directory: swapped in one step where possible, else the old one is first renamed to a
    hidden sibling, which a kill can leave behind (never neither of them)."""
    if _exchange(tmp, path):
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=os.path.dirname(path))
    os.rmdir(old)
    os.rename(path, old)
    os.replace(tmp, path)
    os.rename(old, tmp)


@contextlib.contextmanager
def atomic_path(path: str, replace: bool = True):
    """Yields a temporary sibling path; renames it to `path` on success.

    Works for files and directories. On an exception the temporary is removed
    and `path` is left untouched. With `replace=False` an existing `path` is
    never replaced: FileExistsError instead. Replacing a directory swaps the two
    in one rename (`_replace_dir`), so a kill leaves the old or the new one.
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
        if os.path.isdir(path) and not os.path.islink(path) and os.path.isdir(tmp):
            _replace_dir(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)


def remove_temporaries(directory: str, name: str = "") -> list[str]:
    """Removes what killed atomic writes left in `directory` (`.<name>.tmp-*`,
    `.<name>.old-*`; every name when `name` is ""); returns the names removed. Only
    for the holder of the directory's output lock: a live writer's temporary is not
    told apart."""
    removed = []
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not TEMPORARY.match(entry) or (name and not entry.startswith(f".{name}.")):
            continue
        p = os.path.join(directory, entry)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
        removed.append(entry)
    return sorted(removed)


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
