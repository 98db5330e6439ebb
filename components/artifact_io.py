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
def local_input(uri: str):
    if not is_remote(uri):
        yield uri
        return
    tmp = tempfile.mkdtemp(prefix="avca-input-")
    try:
        io_utils.copy_dir(uri, tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def local_output(uri: str):
    if not is_remote(uri):
        yield uri
        return
    tmp = tempfile.mkdtemp(prefix="avca-output-")
    try:
        yield tmp
        io_utils.copy_dir(tmp, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
