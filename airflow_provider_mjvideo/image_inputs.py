"""
What the API takes as a picture (``image``, ``end_image``, the ``images`` of an imagine), checked at parse time
and resolved at run time.

A picture parameter takes one of:

* an **http(s) URL**, sent as it is;
* a **base64 image data URI** (``data:image/png;base64,…``: PNG, JPEG, WebP or GIF), sent as it is;
* a **stored file**: an ``ObjectStoragePath``, a URI of another scheme (``file:///…``, ``s3://bucket/key``,
  ``gs://…``, ``scheme://conn_id@bucket/…``) or an absolute local path (``/data/frame.png`` is
  ``file:///data/frame.png``). When the task runs, the file is read in chunks (at most ``max_bytes``,
  :data:`DEFAULT_MAX_IMAGE_BYTES` by default), its type is sniffed from its first bytes, and it is sent as a
  data URI of that type.

:func:`check_image_input` and :func:`check_image_list` classify literal values when a DAG is parsed, without
touching any store (values only known after templating are skipped, as :func:`validation.is_unresolved
<airflow_provider_mjvideo.validation.is_unresolved>` says). :func:`resolve_image_input` and
:func:`resolve_image_list` turn rendered values into what the request body takes, before any request.

Storage is imported only by the run-time functions, so :mod:`~airflow_provider_mjvideo.validation` may import
this module from inside a function without an import cycle.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal

from airflow_provider_mjvideo.exceptions import (
    MidjourneyError,
    MidjourneyStorageReadError,
    MidjourneyValidationError,
    shorten,
)
from airflow_provider_mjvideo.media_types import (
    IMAGE_MIME,
    IMAGE_TYPES_TEXT,
    SNIFF_BYTES,
    ImageType,
    describe_bytes,
    image_data_uri_problem,
    sniff_image,
)
from airflow_provider_mjvideo.validation import check_http_url, check_positive_int, is_unresolved

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

#: The default cap of one stored picture (``max_image_bytes``): Midjourney pictures are a few MB at most, and
#: servers and gateways cap request bodies.
DEFAULT_MAX_IMAGE_BYTES: Final = 10 << 20
#: Bytes read from storage at a time.
DEFAULT_READ_CHUNK: Final = 1 << 20
#: What a picture value is.
ImageInputKind = Literal["url", "data_uri", "storage"]

_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_ACCEPTED: Final = (
    "an http(s) URL, a data:image/…;base64 URI, or a stored file (an ObjectStoragePath, a URI such as "
    "file:///…, s3://… or gs://…, or an absolute local path)"
)


@dataclass(frozen=True)
class ImageInput:
    """
    One checked picture value.

    :param parameter: the parameter it was given in (``image``, ``images[2]``…), for messages.
    :param kind: ``"url"`` (http(s)), ``"data_uri"``, or ``"storage"`` (a file to read when the task runs).
    :param value: the URL or data URI (stripped); for a stored file its URI (``file://`` for a local path), or the
        ``ObjectStoragePath`` given.
    """

    parameter: str
    kind: ImageInputKind
    value: Any


def _object_storage_path_class() -> type | None:
    try:
        from airflow.providers.common.compat.sdk import ObjectStoragePath
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return None
    return ObjectStoragePath


def _reject(name: str, value: Any, why: str = "") -> MidjourneyValidationError:
    shown = f"{value[:60]!r}…" if isinstance(value, str) and len(value) > 60 else repr(value)[:80]
    return MidjourneyValidationError(name, f"{why or 'must be ' + _ACCEPTED}, got {shown}")


def _storage_uri(name: str, text: str, scheme: str, rest: str) -> str:
    """Check the shape of a storage URI (no store is touched); return it."""
    if not rest.strip("/"):
        raise _reject(name, text, "names no file")
    if text.endswith("/"):
        raise _reject(name, text, "names a folder (it ends with '/'), not a picture file")
    if scheme.lower() == "file":
        host, slash, _path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise _reject(name, text, "must be a local file URI with an absolute path, such as file:///data/frame.png")
    return text


def check_image_input(name: str, value: Any, *, allow_unresolved: bool = True) -> ImageInput | None:
    """
    Classify one picture value without touching storage; ``None`` for a value only known after templating.

    :param name: the parameter's name, for messages (``image``, ``end_image``, ``images[2]``).
    :param value: an http(s) URL, an image data URI, an ``ObjectStoragePath``, a storage URI, an absolute local
        path (a string or an ``os.PathLike``), or a template / XCom value.
    :param allow_unresolved: skip templated and XCom values (parse time); at run time every value must be known.
    :raises MidjourneyValidationError: naming ``name``: not one of these forms, or a malformed data URI.
    """
    if allow_unresolved and is_unresolved(value):
        return None
    storage_class = _object_storage_path_class()
    if storage_class is not None and isinstance(value, storage_class):
        return ImageInput(name, "storage", value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise _reject(name, value)
    text = value.strip()
    if text[:5].lower() == "data:":
        problem = image_data_uri_problem(text)
        if problem:
            raise MidjourneyValidationError(name, problem)
        return ImageInput(name, "data_uri", text)
    match = _SCHEME.match(text)
    if match:
        scheme, rest = match.groups()
        if scheme.lower() in ("http", "https"):
            return ImageInput(name, "url", check_http_url(name, text))
        return ImageInput(name, "storage", _storage_uri(name, text, scheme, rest))
    if text.startswith("/"):
        return ImageInput(name, "storage", _storage_uri(name, f"file://{text}", "file", text))
    raise _reject(name, text, f"must be {_ACCEPTED} (a relative path cannot be read from every worker)")


def check_image_list(name: str, value: Any, *, allow_unresolved: bool = True) -> list[ImageInput] | None:
    """
    Check a list of pictures (the ``images`` of an imagine) without touching storage.

    ``None`` is no picture; a single value (a string, a path) is one picture; a rendered template's JSON list
    (``'["s3://b/a.png", "https://…"]'``) is read as a list. Items are named ``<name>[<i>]`` in messages.

    :param name: the parameter's name (``images``).
    :param value: the pictures, each as :func:`check_image_input` takes.
    :param allow_unresolved: skip templated and XCom values (parse time).
    :return: the checked pictures in order, or ``None`` when some of them are only known after templating.
    :raises MidjourneyValidationError: naming ``name`` (not a list) or the first bad item (``images[2]``).
    """
    if value is None:
        return []
    if allow_unresolved and is_unresolved(value):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise _reject(name, value, "must be a list of pictures (a JSON list when templated)") from None
    if not isinstance(value, (list, tuple)):
        single = check_image_input(name, value, allow_unresolved=allow_unresolved)
        return None if single is None else [single]
    checked = [
        check_image_input(f"{name}[{i}]", item, allow_unresolved=allow_unresolved) for i, item in enumerate(value)
    ]
    known = [item for item in checked if item is not None]
    return known if len(known) == len(checked) else None


def _storage_path(picture: ImageInput) -> ObjectStoragePath:
    from airflow_provider_mjvideo.storage.destination import require_filesystem, resolve_storage_path

    if isinstance(picture.value, str):
        return resolve_storage_path(picture.value, parameter=picture.parameter)
    return require_filesystem(picture.value, parameter=picture.parameter)


def _encode_capped(handle: BinaryIO, name: str, shown: str, cap: int, chunk_size: int) -> tuple[ImageType, str]:
    """Read ``handle`` in chunks, at most ``cap`` bytes; check its first bytes are a picture; return it in base64."""
    from airflow_provider_mjvideo.storage.downloader import human_size

    head = b""
    kind: ImageType | None = None
    pieces: list[bytes] = []
    carry = b""
    total = 0

    def picture_type() -> ImageType:
        found = sniff_image(head)
        if found is None:
            raise MidjourneyValidationError(
                name, f"{shown} is {describe_bytes(head)}, not a {IMAGE_TYPES_TEXT} picture"
            )
        return found

    while chunk := handle.read(chunk_size):
        total += len(chunk)
        if total > cap:
            raise MidjourneyValidationError(
                name, f"{shown} holds more than {cap} bytes ({human_size(cap)}), over the max_image_bytes cap"
            )
        if kind is None and len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                kind = picture_type()  # an mp4 or a web page is refused before it is read to the end
        # Whole groups of 3 bytes encode on their own: the encoded pieces join into one valid base64 text.
        data = carry + chunk
        cut = len(data) - len(data) % 3
        pieces.append(base64.b64encode(data[:cut]))
        carry = data[cut:]
    if kind is None:
        kind = picture_type()
    pieces.append(base64.b64encode(carry))
    return kind, b"".join(pieces).decode("ascii")


def read_stored_image(
    path: ObjectStoragePath,
    *,
    parameter: str,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    chunk_size: int = DEFAULT_READ_CHUNK,
) -> str:
    """
    Read a stored picture and return it as a ``data:image/<type>;base64,…`` URI, its type sniffed from its bytes.

    The size the store reports is checked against ``max_bytes`` before reading; the bytes read are counted
    against it too (a store may not know the size, or the file may grow).

    :param path: the file, its filesystem resolved.
    :param parameter: the parameter it was given in, named in every error.
    :param max_bytes: the largest file accepted (``max_image_bytes``).
    :param chunk_size: bytes read at a time.
    :raises MidjourneyValidationError: no such file, a folder, over the cap, or not a PNG/JPEG/WebP/GIF picture.
    :raises MidjourneyStorageReadError: the store refused or failed (permissions, credentials, network).
    """
    from airflow_provider_mjvideo.storage.destination import fs_path
    from airflow_provider_mjvideo.storage.downloader import human_size, redact_url

    cap = check_positive_int("max_image_bytes", max_bytes, unit="bytes")
    check_positive_int("chunk_size", chunk_size, unit="bytes")
    shown = redact_url(str(path))
    fs, where = path.fs, fs_path(path)
    try:
        info = fs.info(where)
        if info.get("type") == "directory":
            raise MidjourneyValidationError(parameter, f"{shown} is a folder, not a picture file")
        size = info.get("size")
        if isinstance(size, int) and size > cap:
            raise MidjourneyValidationError(
                parameter,
                f"{shown} is {size} bytes ({human_size(size)}), over the max_image_bytes cap of {cap} bytes "
                f"({human_size(cap)})",
            )
        with fs.open(where, "rb") as handle:
            kind, encoded = _encode_capped(handle, parameter, shown, cap, chunk_size)
    except MidjourneyError:
        raise
    except FileNotFoundError:
        raise MidjourneyValidationError(parameter, f"no such file: {shown}") from None
    except IsADirectoryError:
        raise MidjourneyValidationError(parameter, f"{shown} is a folder, not a picture file") from None
    except Exception as err:
        raise MidjourneyStorageReadError(
            f"Cannot read {parameter!r} from {shown}: {type(err).__name__}: {shorten(str(err), 200)}",
            parameter=parameter,
        ) from None
    return f"data:{IMAGE_MIME[kind]};base64,{encoded}"


def resolve_image_input(
    name: str, value: Any, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, chunk_size: int = DEFAULT_READ_CHUNK
) -> str:
    """
    What the request body takes for one rendered picture value: an http(s) URL or a data URI as it is, a stored
    file read and sent as a data URI (see :func:`read_stored_image`). Call it before any request.

    :param name: the parameter's name, named in every error.
    :param value: the rendered value (see :func:`check_image_input`).
    :param max_bytes: the largest stored file accepted (``max_image_bytes``, default 10 MiB).
    :param chunk_size: bytes read from storage at a time.
    :raises MidjourneyValidationError: a bad value, no such file, a folder, over the cap, not a picture.
    :raises MidjourneyConfigurationError: no filesystem for the URI's scheme (the message says what to install).
    :raises MidjourneyStorageReadError: the store refused or failed.
    """
    check_positive_int("max_image_bytes", max_bytes, unit="bytes")
    picture = check_image_input(name, value, allow_unresolved=False)
    assert picture is not None  # allow_unresolved=False never skips
    if picture.kind != "storage":
        return str(picture.value)
    return read_stored_image(_storage_path(picture), parameter=name, max_bytes=max_bytes, chunk_size=chunk_size)


def resolve_image_list(
    name: str, value: Any, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, chunk_size: int = DEFAULT_READ_CHUNK
) -> list[str]:
    """
    :func:`resolve_image_input` for each picture of a rendered list (``images`` → ``base64Array``); every value is
    checked, and every filesystem resolved, before the first file is read.

    :param name: the parameter's name (``images``); items are named ``<name>[<i>]``.
    :param value: the rendered list (see :func:`check_image_list`).
    :param max_bytes: the largest stored file accepted, per picture.
    :param chunk_size: bytes read from storage at a time.
    """
    check_positive_int("max_image_bytes", max_bytes, unit="bytes")
    pictures = check_image_list(name, value, allow_unresolved=False) or []
    paths = {i: _storage_path(picture) for i, picture in enumerate(pictures) if picture.kind == "storage"}
    return [
        read_stored_image(paths[i], parameter=picture.parameter, max_bytes=max_bytes, chunk_size=chunk_size)
        if i in paths
        else str(picture.value)
        for i, picture in enumerate(pictures)
    ]
