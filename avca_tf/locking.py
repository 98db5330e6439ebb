"""One writer per published output: an advisory lock on the thing written.

Every command that publishes something (a run directory, a serving model
directory, a pipeline root, an ingest/embed output) holds `output_lock(path)`
from before it does any work until it is done. The lock is an `flock` on the
sibling file `.<name>.lock`; the kernel releases it when the holder exits or
is killed, so a lock left behind by a dead process is recovered by the next
writer without any clean-up. The lock file holds who took it (pid, host,
start time, command) for the refusal message; a clean release removes it, so
a lock file found by a new holder is the trace of a process that died while
holding it.

A command that reads an output while it runs (`avca train --tfrecords T`
streams T's shards) holds `input_lock(T)`, a shared flock on the same file:
readers run together, and the writer (`avca ingest --out T`) is refused while
any reader runs, and the readers while it writes.

Remote outputs (gs://, s3://, ...) are not locked: there, outputs must be new
paths (see docs/failures.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import socket
import sys
import time
from typing import Iterator

from avca_tf.errors import AvcaError, ConfigError

POLL_S = 0.2


class LockedError(AvcaError):
    """The output is being written by another process."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock."""
    pid: int
    host: str
    started: str       # ISO time the lock was taken
    command: str

    @classmethod
    def current(cls) -> "Holder":
        argv = [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv else ["python"]
        return cls(pid=os.getpid(), host=socket.gethostname(),
                   started=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                   command=" ".join(argv)[:300])

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}: {self.command}"


def lock_file(target: str) -> str:
    """The lock file of `target`: `.<name>.lock` beside it."""
    target = os.path.abspath(target.rstrip("/") or "/")
    return os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")


def read_holder(path: str) -> Holder | None:
    """The holder record in a lock file; None if empty or unreadable."""
    try:
        with open(path) as f:
            return Holder(**json.loads(f.read()))
    except (OSError, ValueError, TypeError):
        return None


def check_dir_target(path: str, flag: str) -> None:
    """An output that will be a directory must not exist as a file (nor have a file parent)."""
    if "://" in path:
        return
    p = os.path.abspath(path)
    while p and not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            return
        p = parent
    if not os.path.isdir(p):
        raise ConfigError(f"{flag} {path}: {p} exists and is not a directory; expected a "
                          "directory or a path that does not exist yet")


def _open_lock(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, but it is the lock file of "
                          f"{os.path.join(os.path.dirname(path), os.path.basename(path)[1:-5])}; "
                          "remove it (or choose another output path)") from None
    except OSError as e:
        raise ConfigError(f"cannot create the lock file {path}: {e.strerror}") from None


def _acquire(path: str, target: str, what: str, wait_s: float, shared: bool = False) -> int:
    """An fd of `path` holding its flock. The file at `path` when the flock is granted
    must still be the one locked (a releasing holder unlinks it), else try again."""
    deadline, announced = time.monotonic() + wait_s, False
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(path)
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else (
                    "a process that is starting or finishing" if shared else
                    "a process that is starting or finishing, or a reader such as "
                    "`avca train --tfrecords`")
                waited = f" (waited {wait_s:.0f}s)" if wait_s else ""
                doing = "written" if holder or shared else "written or read"
                raise LockedError(
                    f"{what} {target} is being {doing} by another process{waited}: {who}. "
                    "Wait for it to finish (or stop it) and run again, or choose another "
                    "output path.") from None
            if not announced and holder:
                print(f"waiting for the lock of {what} {target}, held by {holder.describe()}",
                      file=sys.stderr, flush=True)
                announced = True
            time.sleep(POLL_S)
            continue
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder had just removed


@contextlib.contextmanager
def input_lock(target: str, what: str) -> Iterator[None]:
    """A shared lock on `target` for as long as a command reads it: other readers go
    ahead, a writer (`output_lock`) is refused, and a writer in progress refuses us.
    Readers leave no holder record; the last one out removes the lock file."""
    if "://" in target or not os.path.exists(os.path.dirname(lock_file(target))):
        yield
        return
    path = lock_file(target)
    fd = _acquire(path, target, what, 0.0, shared=True)
    try:
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other reader left
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(path) == 0:
                    os.unlink(path)
        except BlockingIOError:
            pass
        os.close(fd)


@contextlib.contextmanager
def output_lock(target: str, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Holds the write lock of `target` (refused, or after up to `wait_s` seconds of waiting,
    with a LockedError naming the holder and what to do)."""
    if "://" in target:
        yield
        return
    path = lock_file(target)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = _acquire(path, target, what, wait_s)
    try:
        stale = read_holder(path)
        if stale is not None:
            print(f"note: recovered the lock of {what} {target} left by a process that ended "
                  f"without releasing it ({stale.describe()})", file=sys.stderr, flush=True)
        record = json.dumps(dataclasses.asdict(Holder.current())).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # still locked: a waiter that opened it retries on the new file
        os.close(fd)
