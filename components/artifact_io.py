"""Local working copies of artifact URIs, so the plain functions only see local paths.

On a local run the URIs are local folders and are used as they are. On
Kubeflow they are gs:// (or other remote) URIs: inputs are copied to a
temporary folder first, outputs are written locally and copied up at the end.
"""
import contextlib
import shutil
import tempfile

from tfx.utils import io_utils

from avca_tf.io_utils import is_remote


@contextlib.contextmanager
def _local_copy(uri: str, kind: str, download: bool):
    """`uri` itself when local; else a temporary folder, filled from `uri` first
    (download) or copied up to `uri` when the block succeeds."""
    if not is_remote(uri):
        yield uri
        return
    tmp = tempfile.mkdtemp(prefix=f"avca-{kind}-")
    try:
        if download:
            io_utils.copy_dir(uri, tmp)
        yield tmp
        if not download:
            io_utils.copy_dir(tmp, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_input(uri: str):
    return _local_copy(uri, "input", download=True)


def local_output(uri: str):
    return _local_copy(uri, "output", download=False)
