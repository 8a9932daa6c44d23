"""
The streaming media downloader: one URL to one stored file, checked, hashed, atomic, with bounded retries.

:class:`MediaDownloader` streams the HTTP body in chunks straight into the destination file (memory
stays flat whatever the clip size) while computing its sha256; checks the status, the
``Content-Type`` (``video/*`` for a clip, ``image/*`` for a picture, or a generic binary type whose first
bytes are a video container or a PNG/JPEG/WebP/GIF picture, see :mod:`~airflow_provider_mjvideo.media_types`)
and the length (``Content-Length`` against ``max_bytes`` before reading, the running
count while reading, the count against ``Content-Length`` at the end); writes through
:func:`~airflow_provider_mjvideo.storage.destination.atomic_write`; retries network errors, dropped
connections, truncated bodies and HTTP 408/429/5xx from scratch a bounded number of times; and sends
the API key only to URLs of the API's own origin, redirects included.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urljoin, urlsplit

from airflow_provider_mjvideo.connection import auth_headers as make_auth_headers
from airflow_provider_mjvideo.exceptions import (
    MidjourneyDownloadError,
    MidjourneyMediaContentError,
    MidjourneyMediaTooLargeError,
    MidjourneyMediaUnavailableError,
)
from airflow_provider_mjvideo.media_types import (
    GENERIC_CONTENT_TYPES,
    IMAGE_TYPES_TEXT,
    SNIFF_BYTES,
    describe_bytes,
    image_type_from_mime,
    looks_like_video,
    sniff_image,
)
from airflow_provider_mjvideo.models import TaskKind
from airflow_provider_mjvideo.responses import retry_after_seconds
from airflow_provider_mjvideo.retrying import RetryPolicy, TaskLogger
from airflow_provider_mjvideo.storage.destination import DEFAULT_CHUNK_SIZE, atomic_write, ensure_directory
from airflow_provider_mjvideo.transport import requests_error
from airflow_provider_mjvideo.validation import check_max_file_bytes, check_positive_int

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook

    #: Where a download goes: a file, or a function of the picture type found (``"png"``…, ``None`` when unknown)
    #: that names the file, for a picture whose URL has no extension.
    Target: TypeAlias = ObjectStoragePath | Callable[[str | None], ObjectStoragePath]

log = logging.getLogger(__name__)

#: Default cap of one clip: Midjourney clips are a few MB; anything near this is not a clip.
DEFAULT_MAX_FILE_BYTES: Final = 1 << 30
#: Attempts per clip (the first included) for transient failures.
DEFAULT_MEDIA_ATTEMPTS: Final = 3
#: Redirects followed per clip at most.
MAX_REDIRECTS: Final = 5
_ACCEPT: Final[Mapping[TaskKind, str]] = {
    "video": "video/*, application/octet-stream;q=0.8",
    "image": "image/*, application/octet-stream;q=0.8",
}


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
    """
    The URL (http(s) or a storage URI) for messages and logs: without its query string and fragment (they may
    carry signatures) and with any password of its user info replaced by ``***``.
    """
    parts = urlsplit(url)
    tail = "?…" if parts.query else ""
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else parts.netloc
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def human_size(size: int) -> str:
    """``1536`` → ``"1.5 KB"``; binary multiples, one decimal."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, list[bytes]]:
    """The first ``size`` bytes of ``chunks`` (fewer at the end) and the chunks read for them; ``chunks`` goes on."""
    head, taken = b"", []
    for chunk in chunks:
        taken.append(chunk)
        head += chunk[: size - len(head)]
        if len(head) >= size:
            break
    return head, taken


@dataclass(frozen=True)
class DownloadResult:
    """
    One stored file.

    :param bytes: its size.
    :param sha256: its sha256, hex.
    :param content_type: the ``Content-Type`` it was served with.
    :param path: where it was stored.
    :param image_type: for a picture, its type (``"png"``, ``"jpeg"``, ``"webp"``, ``"gif"``) from its first bytes or
        else its ``Content-Type``; ``None`` for a clip or a picture of another type.
    """

    bytes: int
    sha256: str
    content_type: str
    path: ObjectStoragePath | None = None
    image_type: str | None = None


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
        check_positive_int("chunk_size", chunk_size)
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

    def headers_for(self, url: str, expect: TaskKind = "video") -> dict[str, str]:
        """The request headers for ``url`` (a clip or a picture): the API key only when it has the API's origin."""
        headers = {"Accept": _ACCEPT[expect], "Accept-Encoding": "identity"}
        if self._auth_headers and self.auth_base_url and same_origin(url, self.auth_base_url):
            headers.update(self._auth_headers)
        return headers

    # -- one request ------------------------------------------------------------------------------

    def _get(self, url: str, what: str, expect: TaskKind) -> requests.Response:
        import requests

        try:
            return self.session.get(
                url,
                headers=self.headers_for(url, expect),
                stream=True,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as err:
            raise requests_error(err, what, MidjourneyDownloadError) from None

    def _open(self, url: str, what: str, index: int | None, expect: TaskKind) -> requests.Response:
        """GET ``url`` following redirects by hand (auth decided per hop) and check status, type and length."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme not in ("http", "https"):
                raise MidjourneyMediaUnavailableError(
                    f"Cannot download {what}: not an http(s) URL: {redact_url(current)}", index=index
                )
            response = self._get(current, what, expect)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                current = urljoin(current, location)
                continue
            try:
                self._check_response(response, what, index, expect)
            except BaseException:
                response.close()
                raise
            return response
        raise MidjourneyMediaUnavailableError(
            f"Cannot download {what}: more than {MAX_REDIRECTS} redirects from {redact_url(url)}", index=index
        )

    def _check_response(self, response: requests.Response, what: str, index: int | None, expect: TaskKind) -> None:
        status = response.status_code
        where = redact_url(response.url or "")
        if status in (408, 429) or status >= 500:
            raise MidjourneyDownloadError(
                f"The media server could not serve {what} now ({where})",
                http_status=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status != 200:
            reason = "the media server refused it"
            if status in (401, 403, 404, 410):
                reason = "the URL has expired or is not public (it was read from the task just before)"
            raise MidjourneyMediaUnavailableError(
                f"Cannot download {what} from {where}: {reason}", index=index, http_status=status
            )
        content_type = _content_type(response)
        if not (content_type.startswith(f"{expect}/") or content_type in GENERIC_CONTENT_TYPES):
            noun = "a video" if expect == "video" else "a picture"
            raise MidjourneyMediaContentError(
                f"Refusing {what}: the server sent Content-Type {content_type!r}, not {noun} ({where})",
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

    def _capped(self, chunks: Iterator[bytes], received: list[int], what: str) -> Iterator[bytes]:
        for chunk in chunks:
            if received[0] > self.max_bytes:
                raise MidjourneyMediaTooLargeError(
                    f"Refusing {what}: more than {self.max_bytes} bytes ({human_size(self.max_bytes)}) "
                    "received, over the max_file_bytes cap"
                )
            yield chunk

    def _attempt(self, url: str, target: Target, what: str, index: int | None, expect: TaskKind) -> DownloadResult:
        response = self._open(url, what, index, expect)
        content_type = _content_type(response)
        expected = self._content_length(response)
        digest = hashlib.sha256()
        received = [0]
        try:
            chunks = self._capped(self._chunks(response, what, received, expected), received, what)
            # The first bytes are read before any file is opened: they decide whether the body is what was
            # expected and, for a picture whose URL names no type, the file's extension.
            head, first = _peek(chunks, SNIFF_BYTES)
            image_type = self._check_head(head, content_type, what, expect)
            path = target(image_type) if callable(target) else target
            ensure_directory(path.parent)
            with atomic_write(path) as handle:
                for chunk in itertools.chain(first, chunks):
                    digest.update(chunk)
                    handle.write(chunk)
                if expected is not None and received[0] != expected:
                    raise MidjourneyDownloadError(
                        f"Incomplete download of {what}: {received[0]} of {expected} bytes received"
                    )
        finally:
            response.close()
        return DownloadResult(
            bytes=received[0], sha256=digest.hexdigest(), content_type=content_type, path=path, image_type=image_type
        )

    @staticmethod
    def _check_head(head: bytes, content_type: str, what: str, expect: TaskKind) -> str | None:
        """Refuse a generically typed body whose first bytes are not what was expected; return a picture's type."""
        generic = content_type in GENERIC_CONTENT_TYPES
        served = content_type or "no Content-Type"
        if expect == "video":
            if generic and not looks_like_video(head):
                raise MidjourneyMediaContentError(
                    f"Refusing {what}: served as {served} and its first bytes are not a video container "
                    f"(MP4/QuickTime/WebM): {describe_bytes(head)}"
                )
            return None
        found = sniff_image(head)
        if generic and found is None:
            raise MidjourneyMediaContentError(
                f"Refusing {what}: served as {served} and it is {describe_bytes(head)}, not a {IMAGE_TYPES_TEXT} "
                "picture"
            )
        return found or image_type_from_mime(content_type)

    def download(
        self,
        url: str,
        target: Target,
        *,
        what: str | None = None,
        index: int | None = None,
        expect: TaskKind = "video",
    ) -> DownloadResult:
        """
        Stream ``url`` to ``target`` (replacing it only once complete); retry transient failures from scratch.

        :param url: the http(s) URL.
        :param target: the final file; or, for a picture, a function of its type (``"png"``, ``"jpeg"``, ``"webp"``,
            ``"gif"``, ``None`` when unknown), called once the first bytes are in, that returns the file.
        :param what: how to name the clip or picture in messages.
        :param index: its index, carried on errors.
        :param expect: ``"video"`` (``video/*`` or a video container) or ``"image"`` (``image/*`` or a PNG, JPEG,
            WebP or GIF picture).
        :raises MidjourneyDownloadError: still failing after the retries (transient).
        :raises MidjourneyMediaUnavailableError: HTTP 4xx (permanent).
        :raises MidjourneyMediaTooLargeError: over ``max_bytes`` (permanent).
        :raises MidjourneyMediaContentError: not what ``expect`` says (permanent).
        """
        label = what or redact_url(url)
        import tenacity

        retrying = tenacity.Retrying(
            **self.retry_policy.tenacity_kwargs(resend_safe_only=False, logger=self.log, what=f"Download of {label}")
        )
        return retrying(lambda: self._attempt(url, target, label, index, expect))
