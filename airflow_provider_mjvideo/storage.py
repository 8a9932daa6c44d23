"""
Save a finished task's clips to any Airflow ``ObjectStoragePath``, streaming, hashed, atomically.

:func:`save_task_clips` is what :class:`~airflow_provider_mjvideo.operators.download.DownloadVideoOperator`
runs; it can be called from your own tasks too. For each clip it:

* streams the HTTP body in chunks (``chunk_size``, 1 MiB by default) straight into the destination
  file, so memory stays flat whatever the clip size, while computing its sha256;
* checks the status code, the ``Content-Type`` (``video/*``, or a generic binary type whose first
  bytes look like a video container) and the length (``Content-Length`` against ``max_file_bytes``
  before reading, the running count while reading, and the count against ``Content-Length`` at the end);
* writes ``<name>.part-<random>`` and moves it onto ``<name>`` only when complete, so a failed or
  partial download never leaves a file that looks finished (on ``file://`` the move is an atomic
  ``rename``; object stores only ever show the final key after a complete copy);
* retries network errors, dropped connections, truncated bodies, HTTP 408/429/5xx a bounded number
  of times, from scratch, then raises :class:`MidjourneyDownloadError` (transient: Airflow's task
  retries apply);
* sends the connection's API key only to URLs of the same origin (scheme, host, port) as the
  connection's base URL, redirects included; clips on a CDN never see the key.

Next to the files it writes ``manifest.json`` (what was saved, with sizes and hashes) and an
``index.html`` gallery. A clip whose file is present and matches the manifest of an earlier run
(same task id, clip index and file name; size and sha256 recomputed from the file on disk) is reused
without any request to the media server: a finished Midjourney clip never changes, so the task id
and index identify its content. ``overwrite=True`` downloads again regardless.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import os
import posixpath
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

from airflow_provider_mjvideo import __version__
from airflow_provider_mjvideo.connection import auth_headers as make_auth_headers
from airflow_provider_mjvideo.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyDownloadError,
    MidjourneyMediaContentError,
    MidjourneyMediaTooLargeError,
    MidjourneyMediaUnavailableError,
    MidjourneyTaskFailedError,
    MidjourneyTaskNotReadyError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.models import MidjourneyTask, TaskStatus
from airflow_provider_mjvideo.retrying import RetryPolicy, TaskLogger
from airflow_provider_mjvideo.validation import check_task_id

if TYPE_CHECKING:
    import requests
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

log = logging.getLogger(__name__)

#: Default cap of one clip: Midjourney clips are a few MB; anything near this is not a clip.
DEFAULT_MAX_FILE_BYTES: Final = 1 << 30
#: Bytes read from the network and written to storage at a time.
DEFAULT_CHUNK_SIZE: Final = 1 << 20
#: Attempts per clip (the first included) for transient failures.
DEFAULT_MEDIA_ATTEMPTS: Final = 3
#: Redirects followed per clip at most.
MAX_REDIRECTS: Final = 5
MANIFEST_NAME: Final = "manifest.json"
GALLERY_NAME: Final = "index.html"
MANIFEST_VERSION: Final = 1
#: The keys of one manifest entry in the operator's XCom return value.
XCOM_KEYS: Final = ("index", "url", "path", "bytes", "sha256")
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
_VIDEO_EXTENSIONS: Final = (".mp4", ".m4v", ".mov", ".webm")
_GENERIC_TYPES: Final = ("", "application/octet-stream", "binary/octet-stream", "application/binary")
_ISO_BOXES: Final = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_SNIFF_BYTES: Final = 12


# ------------------------------------------------------------------------------------------ helpers


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (default ports made explicit); path is ignored."""
    first = _origin(url)
    return bool(first[1]) and first == _origin(other)


def redact_url(url: str) -> str:
    """The URL without its query string and fragment (they may carry signatures), for messages and logs."""
    parts = urlsplit(url)
    tail = "?…" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{tail}"


def clip_filename(mj_task_id: str, index: int, url: str) -> str:
    """
    The file name of one clip: ``<task id>_<index><ext>``, the extension taken from the URL when it is
    a known video extension, else ``.mp4``.
    """
    ext = posixpath.splitext(urlsplit(url).path)[1].lower()
    if ext not in _VIDEO_EXTENSIONS:
        ext = ".mp4"
    return f"{mj_task_id}_{index}{ext}"


def human_size(size: int) -> str:
    """``1536`` → ``"1.5 KB"``; binary multiples, one decimal."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _fs_path(path: ObjectStoragePath) -> str:
    """The path as the filesystem object wants it (no scheme)."""
    return str(path.path)


def _is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in _LOCAL_PROTOCOLS


def _missing_filesystem_message(scheme: str, detail: str) -> str:
    provider = PROVIDER_FOR_SCHEME.get(scheme)
    if provider:
        extra = _PROVIDER_EXTRA.get(provider, "")
        return (
            f"Destination scheme {scheme}:// needs the {provider} package: install it "
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
        f"No filesystem is registered for destination scheme {scheme}://: install the Airflow provider or "
        f"the fsspec package that implements {scheme}{implementation}, or register one with "
        f"airflow.sdk.io.attach(protocol={scheme!r}, fs=...) ({detail})"
    )


def resolve_destination(destination: Any) -> ObjectStoragePath:
    """
    Turn a destination URI into an ``ObjectStoragePath`` whose filesystem is usable, without any I/O.

    Accepts ``file:///abs/dir/``, ``s3://bucket/prefix/``, ``gs://…`` (with the provider installed),
    ``scheme://conn_id@bucket/…``, or an absolute local path.

    :param destination: the rendered ``destination``.
    :raises MidjourneyValidationError: empty, relative or not a string.
    :raises MidjourneyConfigurationError: no filesystem for the scheme; names what to install.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if not isinstance(destination, (str, os.PathLike)) or not str(destination).strip():
        raise MidjourneyValidationError(
            "destination", f"must be a non-empty storage URI such as file:///data/mj/, got {destination!r:.80}"
        )
    text = str(destination).strip()
    if "://" not in text:
        if not text.startswith("/"):
            raise MidjourneyValidationError(
                "destination", f"must be a URI (file:///…, s3://…, gs://…) or an absolute path, got {text!r:.80}"
            )
        text = f"file://{text}"
    scheme = urlsplit(text).scheme.lower()
    try:
        # The protocol is passed explicitly: Airflow 3.0's ObjectStoragePath (a upath CloudPath subclass) refuses
        # every URI whose protocol it has to detect itself once universal-pathlib 0.3 is installed ("detected
        # protocol file which is incompatible with ObjectStoragePath"); newer Airflow builds the same path.
        path = ObjectStoragePath(text, protocol=scheme)
    except (ValueError, ImportError) as err:
        raise MidjourneyConfigurationError(_missing_filesystem_message(scheme, str(err))) from None
    try:
        path.fs  # noqa: B018 - resolve the filesystem now, for a clear error before any request
    except (ValueError, ImportError) as err:
        raise MidjourneyConfigurationError(_missing_filesystem_message(scheme, str(err))) from None
    return path


def hash_file(path: ObjectStoragePath, chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[int, str]:
    """Return ``(size, sha256 hex)`` of a stored file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.fs.open(_fs_path(path), "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def _remove_quietly(path: ObjectStoragePath) -> None:
    with contextlib.suppress(Exception):
        fs = path.fs
        if fs.exists(_fs_path(path)):
            fs.rm(_fs_path(path))


def _temporary_sibling(target: ObjectStoragePath) -> ObjectStoragePath:
    return target.parent / f"{target.name}.part-{secrets.token_hex(6)}"


def _ensure_directory(directory: ObjectStoragePath) -> None:
    """Create a local directory; object stores have no directories to create."""
    if _is_local(directory):
        directory.fs.makedirs(_fs_path(directory), exist_ok=True)


def _sync(handle: Any) -> None:
    """fsync a local file before the rename, so a crash cannot leave an empty file under the final name."""
    with contextlib.suppress(Exception):
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _atomic_write(target: ObjectStoragePath) -> Iterator[Any]:
    """
    Yield a binary handle on a temporary sibling of ``target``; move it onto ``target`` when the block ends.

    The file is synced first on ``file://``. If the block raises, the temporary file is removed and
    ``target`` is left as it was: nothing half-written ever carries the final name.
    """
    tmp = _temporary_sibling(target)
    fs = target.fs
    try:
        with fs.open(_fs_path(tmp), "wb") as handle:
            yield handle
            if _is_local(target):
                _sync(handle)
        fs.mv(_fs_path(tmp), _fs_path(target))
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_bytes_atomic(target: ObjectStoragePath, data: bytes) -> None:
    """Write a small file under a temporary name, then move it onto ``target``."""
    with _atomic_write(target) as handle:
        handle.write(data)


def _looks_like_video(head: bytes) -> bool:
    return head[4:8] in _ISO_BOXES or head.startswith(_EBML_MAGIC)


# ------------------------------------------------------------------------------------------ downloader


@dataclass(frozen=True)
class DownloadResult:
    """
    One stored file.

    :param bytes: its size.
    :param sha256: its sha256, hex.
    :param content_type: the ``Content-Type`` it was served with.
    """

    bytes: int
    sha256: str
    content_type: str


class MediaDownloader:
    """
    Stream media URLs to storage, hashing while writing, with bounded retries.

    :param auth_base_url: the API's base URL; the auth headers go only to URLs of the same origin.
    :param auth_headers: the header(s) carrying the API key.
    :param timeout: seconds to connect and between two reads (not a total).
    :param max_bytes: the largest file accepted.
    :param chunk_size: bytes read and written at a time.
    :param retry_policy: attempts and backoff for transient failures.
    :param session: a ``requests.Session`` to use (one is made otherwise). Never the API hook's
        session: that one would add the key to every request.
    :param logger: where to log.
    """

    def __init__(
        self,
        *,
        auth_base_url: str | None = None,
        auth_headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_bytes: int = DEFAULT_MAX_FILE_BYTES,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry_policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        logger: TaskLogger | None = None,
    ) -> None:
        check_max_file_bytes(max_bytes)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise MidjourneyValidationError("chunk_size", f"must be a positive integer, got {chunk_size!r}")
        self.auth_base_url = auth_base_url
        self._auth_headers = dict(auth_headers or {})
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy or RetryPolicy(DEFAULT_MEDIA_ATTEMPTS, 1.0, 10.0)
        self._session = session
        self._own_session = session is None
        self.log = logger or log

    @classmethod
    def for_hook(cls, hook: MidjourneyHook, **kwargs: Any) -> MediaDownloader:
        """A downloader that may authenticate to the hook's API origin (and only there), with its timeout."""
        settings = hook.settings
        kwargs.setdefault("timeout", settings.timeout)
        return cls(
            auth_base_url=settings.base_url,
            auth_headers=make_auth_headers(settings.auth_style, settings.api_key),
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"MediaDownloader(auth_base_url={self.auth_base_url!r}, max_bytes={self.max_bytes})"

    @property
    def session(self) -> requests.Session:
        """The HTTP session (made on first use)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        """Close the session if this object made it."""
        if self._session is not None and self._own_session:
            self._session.close()
            self._session = None

    def __enter__(self) -> MediaDownloader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def headers_for(self, url: str) -> dict[str, str]:
        """The request headers for ``url``: the API key only when it has the API's origin."""
        headers = {"Accept": "video/*, application/octet-stream;q=0.8", "Accept-Encoding": "identity"}
        if self._auth_headers and self.auth_base_url and same_origin(url, self.auth_base_url):
            headers.update(self._auth_headers)
        return headers

    # -- one request ------------------------------------------------------------------------------

    def _get(self, url: str, what: str) -> requests.Response:
        import requests

        try:
            return self.session.get(
                url,
                headers=self.headers_for(url),
                stream=True,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as err:
            raise MidjourneyDownloadError(f"Timed out requesting {what}: {type(err).__name__}") from None
        except requests.exceptions.ConnectionError as err:
            raise MidjourneyDownloadError(f"Network error requesting {what}: {type(err).__name__}") from None
        except requests.exceptions.RequestException as err:
            raise MidjourneyDownloadError(f"Request failed for {what}: {type(err).__name__}") from None

    def _open(self, url: str, what: str, index: int | None) -> requests.Response:
        """GET ``url`` following redirects by hand (auth decided per hop) and check status, type and length."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme not in ("http", "https"):
                raise MidjourneyMediaUnavailableError(
                    f"Cannot download {what}: not an http(s) URL: {redact_url(current)}", index=index
                )
            response = self._get(current, what)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                current = urljoin(current, location)
                continue
            try:
                self._check_response(response, what, index)
            except BaseException:
                response.close()
                raise
            return response
        raise MidjourneyMediaUnavailableError(
            f"Cannot download {what}: more than {MAX_REDIRECTS} redirects from {redact_url(url)}", index=index
        )

    def _check_response(self, response: requests.Response, what: str, index: int | None) -> None:
        status = response.status_code
        where = redact_url(response.url or "")
        if status in (408, 429) or status >= 500:
            retry_after = None
            raw = response.headers.get("Retry-After")
            with contextlib.suppress(TypeError, ValueError):
                retry_after = max(0.0, float(raw)) if raw is not None else None
            raise MidjourneyDownloadError(
                f"The media server could not serve {what} now ({where})", http_status=status, retry_after=retry_after
            )
        if status != 200:
            reason = "the media server refused it"
            if status in (401, 403, 404, 410):
                reason = "the URL has expired or is not public (it was read from the task just before)"
            raise MidjourneyMediaUnavailableError(
                f"Cannot download {what} from {where}: {reason}", index=index, http_status=status
            )
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if not (content_type.startswith("video/") or content_type in _GENERIC_TYPES):
            raise MidjourneyMediaContentError(
                f"Refusing {what}: the server sent Content-Type {content_type!r}, not a video ({where})",
                http_status=status,
            )
        length = self._content_length(response)
        if length is not None and length > self.max_bytes:
            raise MidjourneyMediaTooLargeError(
                f"Refusing {what}: Content-Length {length} bytes ({human_size(length)}) is over the "
                f"max_file_bytes cap of {self.max_bytes} bytes ({human_size(self.max_bytes)})"
            )

    @staticmethod
    def _content_length(response: requests.Response) -> int | None:
        if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
            return None  # the body is decoded while read: its length is not the header's
        raw = response.headers.get("Content-Length")
        try:
            value = int(raw) if raw is not None else None
        except ValueError:
            return None
        return value if value is not None and value >= 0 else None

    # -- one attempt ------------------------------------------------------------------------------

    def _chunks(
        self, response: requests.Response, what: str, received: list[int], expected: int | None
    ) -> Iterator[bytes]:
        import requests

        try:
            for chunk in response.iter_content(self.chunk_size):
                if chunk:
                    received[0] += len(chunk)
                    yield chunk
        except (requests.exceptions.RequestException, OSError) as err:
            total = f" of {expected}" if expected is not None else ""
            raise MidjourneyDownloadError(
                f"Connection lost while downloading {what}: {received[0]}{total} bytes stored when the transfer "
                f"broke ({type(err).__name__})"
            ) from None

    def _attempt(self, url: str, target: ObjectStoragePath, what: str, index: int | None) -> DownloadResult:
        response = self._open(url, what, index)
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        expected = self._content_length(response)
        digest = hashlib.sha256()
        received = [0]
        head = b""
        sniff = content_type in _GENERIC_TYPES
        try:
            with _atomic_write(target) as handle:
                for chunk in self._chunks(response, what, received, expected):
                    if received[0] > self.max_bytes:
                        raise MidjourneyMediaTooLargeError(
                            f"Refusing {what}: more than {self.max_bytes} bytes ({human_size(self.max_bytes)}) "
                            "received, over the max_file_bytes cap"
                        )
                    if sniff and len(head) < _SNIFF_BYTES:
                        head += chunk[: _SNIFF_BYTES - len(head)]
                        if len(head) >= _SNIFF_BYTES:
                            self._check_sniff(head, content_type, what)
                    digest.update(chunk)
                    handle.write(chunk)
                if sniff and len(head) < _SNIFF_BYTES:
                    self._check_sniff(head, content_type, what)
                if expected is not None and received[0] != expected:
                    raise MidjourneyDownloadError(
                        f"Incomplete download of {what}: {received[0]} of {expected} bytes received"
                    )
        finally:
            response.close()
        return DownloadResult(bytes=received[0], sha256=digest.hexdigest(), content_type=content_type)

    @staticmethod
    def _check_sniff(head: bytes, content_type: str, what: str) -> None:
        if not _looks_like_video(head):
            raise MidjourneyMediaContentError(
                f"Refusing {what}: served as {content_type or 'no Content-Type'} and its first bytes are not a "
                "video container (MP4/QuickTime/WebM)"
            )

    def download(
        self, url: str, target: ObjectStoragePath, *, what: str | None = None, index: int | None = None
    ) -> DownloadResult:
        """
        Stream ``url`` to ``target`` (replacing it only once complete); retry transient failures from scratch.

        :param url: the http(s) URL.
        :param target: the final file.
        :param what: how to name the clip in messages.
        :param index: the clip index, carried on errors.
        :raises MidjourneyDownloadError: still failing after the retries (transient).
        :raises MidjourneyMediaUnavailableError: HTTP 4xx (permanent).
        :raises MidjourneyMediaTooLargeError: over ``max_bytes`` (permanent).
        :raises MidjourneyMediaContentError: not a video (permanent).
        """
        label = what or redact_url(url)
        _ensure_directory(target.parent)
        import tenacity

        retrying = tenacity.Retrying(
            **self.retry_policy.tenacity_kwargs(resend_safe_only=False, logger=self.log, what=f"Download of {label}")
        )
        return retrying(lambda: self._attempt(url, target, label, index))


def check_max_file_bytes(value: Any) -> int:
    """Return ``value`` if it is a positive integer number of bytes."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MidjourneyValidationError("max_file_bytes", f"must be a positive integer number of bytes, got {value!r}")
    return value


def check_indexes(value: Any) -> list[int] | None:
    """
    Return the clip indexes as a list of distinct ints 0-3 (``None`` meaning every clip).

    Accepts one int, a list/tuple of ints or digit strings, or a rendered template's ``"[0, 2]"`` / ``"1"``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise MidjourneyValidationError(
                "indexes", f"must be clip indexes 0-3 such as [0, 2], got {text!r:.80}"
            ) from None
    items = [value] if isinstance(value, (int, str)) and not isinstance(value, bool) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise MidjourneyValidationError("indexes", f"must be a non-empty list of clip indexes 0-3, got {value!r:.80}")
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 3:
            raise MidjourneyValidationError("indexes", f"each index must be an integer 0-3, got {item!r:.40}")
        if item not in out:
            out.append(item)
    return out


# ------------------------------------------------------------------------------------------ manifest


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, int] | None:
    task_id, index = entry.get("mj_task_id"), entry.get("index")
    if isinstance(task_id, str) and isinstance(index, int) and not isinstance(index, bool):
        return task_id, index
    return None


def read_manifest(directory: ObjectStoragePath) -> list[dict[str, Any]]:
    """The clip entries of ``directory/manifest.json``; ``[]`` when missing or unreadable."""
    path = directory / MANIFEST_NAME
    try:
        with path.fs.open(_fs_path(path), "rb") as handle:
            data = json.loads(handle.read(16 << 20))
    except FileNotFoundError:
        return []
    except Exception as err:
        log.warning("Ignoring unreadable %s: %s", path, err)
        return []
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        return []
    return [dict(entry) for entry in clips if isinstance(entry, dict) and _entry_key(entry)]


def merge_entries(previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Previous entries of other clips plus the current ones, sorted by task id and index."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in [*previous, *current]:
        key = _entry_key(entry)
        if key:
            merged[key] = dict(entry)
    return [merged[key] for key in sorted(merged)]


def manifest_document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document written to ``manifest.json``."""
    return {
        "version": MANIFEST_VERSION,
        "generator": f"airflow-provider-mjvideo {__version__}",
        "updated_at": _now_iso(),
        "clips": entries,
    }


_GALLERY_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#101014;color:#ececf1}
header{padding:20px 28px 6px}h1{font-size:22px;margin:0 0 4px}header p{margin:0;color:#a0a0ad}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:20px;padding:20px 28px 28px}
figure{margin:0;background:#1b1b22;border:1px solid #2c2c36;border-radius:10px;overflow:hidden}
video{display:block;width:100%;aspect-ratio:16/9;background:#000}
figcaption{padding:10px 12px 12px}.prompt{font-weight:600;margin-bottom:6px;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:0;font-size:13px;color:#b8b8c4}
dt{color:#7d7d8a}dd{margin:0;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace}
a{color:#b69cff}
""".strip()


def render_gallery(entries: list[dict[str, Any]]) -> str:
    """An ``index.html`` showing each clip in a ``<video controls>`` with prompt, task id, index and size."""
    figures = []
    for entry in entries:
        name = html.escape(str(entry.get("file") or ""), quote=True)
        prompt = html.escape(str(entry.get("prompt") or "(no prompt recorded)"))
        size = int(entry.get("bytes") or 0)
        sha = html.escape(str(entry.get("sha256") or "")[:16])
        figures.append(
            f"""<figure>
  <video controls preload="auto" src="{name}#t=0.1" title="{name}"></video>
  <figcaption>
    <div class="prompt">{prompt}</div>
    <dl>
      <dt>task</dt><dd>{html.escape(str(entry.get("mj_task_id")))}</dd>
      <dt>clip</dt><dd>{int(entry.get("index") or 0)}</dd>
      <dt>size</dt><dd>{html.escape(human_size(size))} ({size:,} bytes)</dd>
      <dt>file</dt><dd><a href="{name}">{name}</a></dd>
      <dt>sha256</dt><dd>{sha}…</dd>
    </dl>
  </figcaption>
</figure>"""
        )
    tasks = sorted({str(entry.get("mj_task_id")) for entry in entries})
    summary = (
        f"{len(entries)} clip{'s' if len(entries) != 1 else ''} of {len(tasks)} task{'s' if len(tasks) != 1 else ''}"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Midjourney clips</title>
<style>
{_GALLERY_STYLE}
</style>
</head>
<body>
<header>
  <h1>Midjourney clips</h1>
  <p>{html.escape(summary)} · <a href="{MANIFEST_NAME}">{MANIFEST_NAME}</a> · updated {html.escape(_now_iso())}</p>
</header>
<main>
{chr(10).join(figures)}
</main>
</body>
</html>
"""


# ------------------------------------------------------------------------------------------ the job


@dataclass(frozen=True)
class SavedClip:
    """One clip in the destination, and whether this run downloaded it."""

    entry: dict[str, Any]
    downloaded: bool

    def xcom(self) -> dict[str, Any]:
        """The ``{"index", "url", "path", "bytes", "sha256"}`` dict of the operator's return value."""
        return {key: self.entry[key] for key in XCOM_KEYS}


def _reusable(previous: Mapping[str, Any] | None, target: ObjectStoragePath, name: str) -> bool:
    """Whether ``target`` is the very file an earlier run recorded (size and sha256 recomputed from storage)."""
    if not previous or previous.get("file") != name:
        return False
    try:
        fs = target.fs
        if not fs.exists(_fs_path(target)) or fs.size(_fs_path(target)) != previous.get("bytes"):
            return False
        return hash_file(target)[1] == previous.get("sha256")
    except Exception as err:
        log.warning("Cannot check %s for reuse (%s); downloading again", target, err)
        return False


def _finished_task(task: MidjourneyTask) -> MidjourneyTask:
    if task.status.is_failure:
        raise MidjourneyTaskFailedError(
            f"Midjourney task {task.id} ended {task.status.value}"
            + (f": {task.fail_reason}" if task.fail_reason else "")
            + "; it has no clips to download",
            mj_task_id=task.id,
            status=task.status.value,
        )
    if task.status is not TaskStatus.SUCCESS:
        raise MidjourneyTaskNotReadyError(
            f"Midjourney task {task.id} is {task.status.value} ({task.progress}%), not finished: "
            "wait for it (MidjourneyTaskSensor) before downloading"
        )
    if not task.video_urls:
        raise MidjourneyTaskNotReadyError(f"Midjourney task {task.id} is SUCCESS but has no video URLs yet")
    return task


def save_task_clips(
    hook: MidjourneyHook,
    mj_task_id: str,
    destination: Any,
    indexes: Any = None,
    *,
    overwrite: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    downloader: MediaDownloader | None = None,
    logger: TaskLogger | None = None,
) -> list[SavedClip]:
    """
    Fetch a finished task (for fresh URLs) and save its clips, ``manifest.json`` and ``index.html``.

    Every parameter is checked, and the destination's filesystem resolved, before any request.

    :param hook: the API hook (used for ``get_task``, its base URL, key and timeout).
    :param mj_task_id: the finished task.
    :param destination: a directory URI (``file:///…/``, ``s3://bucket/prefix/``…).
    :param indexes: the clips to save (0-3); ``None`` for every clip of the task.
    :param overwrite: download even when an identical file from an earlier run is present.
    :param max_file_bytes: refuse larger clips.
    :param downloader: the :class:`MediaDownloader` (default: :meth:`MediaDownloader.for_hook`).
    :param logger: where to log.
    :return: one :class:`SavedClip` per requested index, in order.
    """
    logger = logger or log
    mj_task_id = check_task_id("mj_task_id", mj_task_id)
    wanted = check_indexes(indexes)
    check_max_file_bytes(max_file_bytes)
    directory = resolve_destination(destination)

    task = _finished_task(hook.get_task(mj_task_id))
    urls = list(task.video_urls)
    if wanted is None:
        wanted = list(range(min(len(urls), 4)))
    for index in wanted:
        if index >= len(urls):
            raise MidjourneyValidationError(
                "indexes",
                f"task {task.id} has {len(urls)} clip(s) (indexes 0-{len(urls) - 1}); there is no clip {index}",
            )

    _ensure_directory(directory)
    previous = read_manifest(directory)
    by_key = {_entry_key(entry): entry for entry in previous}
    own = downloader is None
    downloader = downloader or MediaDownloader.for_hook(hook, max_bytes=max_file_bytes, logger=logger)
    saved: list[SavedClip] = []
    try:
        for index in wanted:
            url = urls[index]
            name = clip_filename(task.id, index, url)
            target = directory / name
            what = f"clip {index} of task {task.id}"
            earlier = by_key.get((task.id, index))
            if not overwrite and _reusable(earlier, target, name):
                assert earlier is not None
                entry = {**earlier, "url": url, "path": str(target), "prompt": task.prompt}
                logger.info(
                    "Reusing %s: %s is identical (%d bytes, sha256 %s)", what, target, entry["bytes"], entry["sha256"]
                )
                saved.append(SavedClip(entry, downloaded=False))
                continue
            logger.info("Downloading %s from %s to %s", what, redact_url(url), target)
            result = downloader.download(url, target, what=what, index=index)
            logger.info("Saved %s: %s, %d bytes, sha256 %s", what, target, result.bytes, result.sha256)
            entry = {
                "mj_task_id": task.id,
                "index": index,
                "file": name,
                "url": url,
                "path": str(target),
                "bytes": result.bytes,
                "sha256": result.sha256,
                "content_type": result.content_type,
                "prompt": task.prompt,
                "saved_at": _now_iso(),
            }
            saved.append(SavedClip(entry, downloaded=True))
    finally:
        if own:
            downloader.close()

    entries = merge_entries(previous, [clip.entry for clip in saved])
    write_bytes_atomic(
        directory / MANIFEST_NAME, json.dumps(manifest_document(entries), indent=2, ensure_ascii=False).encode()
    )
    write_bytes_atomic(directory / GALLERY_NAME, render_gallery(entries).encode())
    return saved
