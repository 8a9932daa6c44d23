"""
Storage URIs turned into usable ``ObjectStoragePath`` objects (the destination folder of clips, a stored file
to read such as a first frame), with the one message saying what to install for a scheme; atomic writes.

Everything here works through the path's fsspec filesystem, so ``file://``, ``s3://``, ``gs://``… behave
alike; the few local-only steps (creating folders, ``fsync``) are skipped on object stores, which have
no folders and only ever show a key once its upload is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_mjvideo.exceptions import MidjourneyConfigurationError
from airflow_provider_mjvideo.validation import check_destination

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

#: Bytes read from the network and written to storage at a time (and read back when hashing).
DEFAULT_CHUNK_SIZE: Final = 1 << 20
#: Which Airflow provider registers the filesystem of a URI scheme.
PROVIDER_FOR_SCHEME: Final[Mapping[str, str]] = {
    "s3": "apache-airflow-providers-amazon",
    "s3a": "apache-airflow-providers-amazon",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
    "az": "apache-airflow-providers-microsoft-azure",
    "wasb": "apache-airflow-providers-microsoft-azure",
    "wasbs": "apache-airflow-providers-microsoft-azure",
}
#: The extra that brings the fsspec implementation along with the provider, where one is needed.
_PROVIDER_EXTRA: Final[Mapping[str, str]] = {"apache-airflow-providers-amazon": "[s3fs]"}
_LOCAL_PROTOCOLS: Final = ("", "file", "local")


def fs_path(path: ObjectStoragePath) -> str:
    """The path as the filesystem object wants it (no scheme)."""
    return str(path.path)


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on the local filesystem (``file://``)."""
    return (path.protocol or "") in _LOCAL_PROTOCOLS


def _missing_filesystem_message(scheme: str, detail: str, parameter: str) -> str:
    provider = PROVIDER_FOR_SCHEME.get(scheme)
    if provider:
        extra = _PROVIDER_EXTRA.get(provider, "")
        return (
            f"{parameter!r}: scheme {scheme}:// needs the {provider} package: install it "
            f"(pip install '{provider}{extra}') in the workers' environment ({detail})"
        )
    implementation = ""
    try:
        from fsspec.registry import known_implementations

        known = known_implementations.get(scheme)
        if known:
            implementation = f"; fsspec implements it in {known['class']}"
            if known.get("err"):
                implementation += f" ({known['err']})"
    except Exception:  # pragma: no cover - fsspec internals
        pass
    return (
        f"{parameter!r}: no filesystem is registered for scheme {scheme}://: install the Airflow provider or "
        f"the fsspec package that implements {scheme}{implementation}, or register one with "
        f"airflow.sdk.io.attach(protocol={scheme!r}, fs=...) ({detail})"
    )


def require_filesystem(path: ObjectStoragePath, *, parameter: str) -> ObjectStoragePath:
    """
    Return ``path`` once its filesystem is resolved (no I/O on the store itself), for a clear error before any request.

    :param path: a storage path.
    :param parameter: the parameter it came from, named in the error.
    :raises MidjourneyConfigurationError: no filesystem for its scheme; names the parameter and what to install.
    """
    try:
        path.fs  # noqa: B018 - resolve the filesystem now
    except (ValueError, ImportError) as err:
        scheme = str(path.protocol or "file").lower()
        raise MidjourneyConfigurationError(_missing_filesystem_message(scheme, str(err), parameter)) from None
    return path


def resolve_storage_path(uri: str, *, parameter: str) -> ObjectStoragePath:
    """
    Turn a storage URI (``file:///…``, ``s3://bucket/key``, ``scheme://conn_id@bucket/…``) into an
    ``ObjectStoragePath`` whose filesystem is usable, without any I/O on the store: a folder or a file alike.

    :param uri: the URI, with its scheme (an absolute local path is ``file://<path>`` by then).
    :param parameter: the parameter it came from, named in errors.
    :raises MidjourneyConfigurationError: no filesystem for the scheme; names the parameter and what to install.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    scheme = urlsplit(uri).scheme.lower()
    try:
        # The protocol is passed explicitly: Airflow 3.0's ObjectStoragePath (a upath CloudPath subclass) refuses
        # every URI whose protocol it has to detect itself once universal-pathlib 0.3 is installed ("detected
        # protocol file which is incompatible with ObjectStoragePath"); newer Airflow builds the same path.
        path = ObjectStoragePath(uri, protocol=scheme)
    except (ValueError, ImportError) as err:
        raise MidjourneyConfigurationError(_missing_filesystem_message(scheme, str(err), parameter)) from None
    return require_filesystem(path, parameter=parameter)


def resolve_destination(destination: Any) -> ObjectStoragePath:
    """
    Turn a destination URI into an ``ObjectStoragePath`` whose filesystem is usable, without any I/O.

    Accepts ``file:///abs/dir/``, ``s3://bucket/prefix/``, ``gs://…`` (with the provider installed),
    ``scheme://conn_id@bucket/…``, or an absolute local path.

    :param destination: the rendered ``destination``.
    :raises MidjourneyValidationError: empty, relative or not a string.
    :raises MidjourneyConfigurationError: no filesystem for the scheme; names what to install.
    """
    return resolve_storage_path(check_destination(destination), parameter="destination")


def hash_file(path: ObjectStoragePath, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[int, str]:
    """
    Return ``(size, sha256 hex)`` of a stored file, read in chunks.

    :param path: the stored file.
    :param chunk_size: bytes read at a time.
    """
    digest = hashlib.sha256()
    size = 0
    with path.fs.open(fs_path(path), "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def remove_quietly(path: ObjectStoragePath) -> None:
    """Delete ``path`` if it exists; a failure to delete is not worth hiding the error being handled."""
    with contextlib.suppress(Exception):
        fs = path.fs
        if fs.exists(fs_path(path)):
            fs.rm(fs_path(path))


def _temporary_sibling(target: ObjectStoragePath) -> ObjectStoragePath:
    # A random suffix: two writers of the same target never share a temporary file.
    return target.parent / f"{target.name}.part-{secrets.token_hex(6)}"


def ensure_directory(directory: ObjectStoragePath) -> None:
    """Create a local directory; object stores have no directories to create."""
    if is_local(directory):
        directory.fs.makedirs(fs_path(directory), exist_ok=True)


def _sync(handle: Any) -> None:
    """fsync a local file before the rename, so a crash cannot leave an empty file under the final name."""
    with contextlib.suppress(Exception):
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_write(target: ObjectStoragePath) -> Iterator[Any]:
    """
    Yield a binary handle on a temporary sibling of ``target``; move it onto ``target`` when the block ends.

    The file is synced first on ``file://``. If the block raises, the temporary file is removed and
    ``target`` is left as it was: nothing half-written ever carries the final name.

    :param target: the final file.
    """
    tmp = _temporary_sibling(target)
    fs = target.fs
    try:
        with fs.open(fs_path(tmp), "wb") as handle:
            yield handle
            if is_local(target):
                _sync(handle)
        fs.mv(fs_path(tmp), fs_path(target))
    except BaseException:
        remove_quietly(tmp)
        raise


def write_bytes_atomic(target: ObjectStoragePath, data: bytes) -> None:
    """
    Write a small file under a temporary name, then move it onto ``target``.

    :param target: the final file.
    :param data: its whole content.
    """
    with atomic_write(target) as handle:
        handle.write(data)
