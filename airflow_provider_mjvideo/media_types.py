"""
What media bytes are: the signatures of the pictures the API takes (PNG, JPEG, WebP, GIF) and of video
containers, the words for anything else in error messages, the picture file extensions, and the rule of
an image data URI.

A leaf module (it imports nothing of the provider), so that :mod:`~airflow_provider_mjvideo.validation`,
:mod:`~airflow_provider_mjvideo.image_inputs` and :mod:`~airflow_provider_mjvideo.storage` share it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

#: The picture types the API takes, as :func:`sniff_image` names them.
ImageType = Literal["png", "jpeg", "webp", "gif"]
IMAGE_TYPES: Final[tuple[ImageType, ...]] = ("png", "jpeg", "webp", "gif")
#: The MIME type of each picture type, as a data URI or a ``Content-Type`` carries it.
IMAGE_MIME: Final[Mapping[ImageType, str]] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
#: The file extension a saved picture of each type gets.
IMAGE_EXTENSION: Final[Mapping[str, str]] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "gif": ".gif"}
#: ``Content-Type`` values that say nothing of the content: the first bytes decide.
GENERIC_CONTENT_TYPES: Final = ("", "application/octet-stream", "binary/octet-stream", "application/binary")
#: Leading bytes enough to recognise any type here (WebP needs 12, an HTML doctype 15).
SNIFF_BYTES: Final = 64
#: How the pictures the API takes are named in messages.
IMAGE_TYPES_TEXT: Final = "PNG, JPEG, WebP or GIF"

_BY_SUBTYPE: Final[Mapping[str, ImageType]] = {
    "png": "png",
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "webp": "webp",
    "gif": "gif",
}
_ISO_BOXES: Final = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_TOKEN: Final = re.compile(r"[\w.+-]+=[\w.+-]+")


def sniff_image(head: bytes) -> ImageType | None:
    """
    The picture type that ``head`` (a file's first bytes, :data:`SNIFF_BYTES` are enough) starts with, if any.

    :param head: the first bytes.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def looks_like_video(head: bytes) -> bool:
    """
    Whether ``head`` starts a video container: an ISO-BMFF box (MP4, QuickTime) or EBML (WebM, Matroska).

    :param head: the first bytes (12 are enough).
    """
    return head[4:8] in _ISO_BOXES or head.startswith(_EBML_MAGIC)


def describe_bytes(head: bytes) -> str:
    """
    What a file that starts with ``head`` is, in words for an error message (``"an HTML page"``, ``"an MP4 video"``).

    :param head: the first bytes (:data:`SNIFF_BYTES` of them, or the whole file when shorter).
    """
    if not head:
        return "an empty file"
    image = sniff_image(head)
    if image:
        return f"a {image.upper()} picture"
    if head.startswith(_EBML_MAGIC):
        return "a WebM/Matroska video"
    if looks_like_video(head):
        return "an MP4/QuickTime video"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    text = _as_text(head).lstrip("\ufeff \t\r\n")
    if text and all(char.isprintable() or char in "\t\r\n" for char in text):
        lowered = text.lower()
        if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
            return "an HTML page"
        if lowered.startswith(("<svg", "<?xml")):
            return "an XML or SVG document"
        if lowered.startswith(("{", "[")):
            return "JSON text"
        return "text"
    return f"unknown bytes ({head[:8].hex(' ')} …)"


def _as_text(head: bytes) -> str:
    """``head`` as UTF-8 text, ``""`` when it is not; the cut may fall inside a character, so up to 3 bytes go."""
    for cut in range(min(4, len(head))):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""


def image_type_from_name(url_or_path: str) -> ImageType | None:
    """
    The picture type a URL's or a path's extension names (``…/grid.png?ex=1`` → ``"png"``), if any.

    :param url_or_path: an http(s) URL or a file path.
    """
    extension = posixpath.splitext(urlsplit(url_or_path).path)[1].lower().lstrip(".")
    return _BY_SUBTYPE.get(extension)


def image_type_from_mime(content_type: str) -> ImageType | None:
    """
    The picture type of a MIME type (``image/jpeg; q=1`` → ``"jpeg"``), if it is one the API takes.

    :param content_type: a ``Content-Type`` value or a data URI's type.
    """
    mime = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    return _BY_SUBTYPE.get(subtype) if kind == "image" else None


def image_data_uri_problem(text: str) -> str | None:
    """
    ``None`` when ``text`` is an image data URI the API takes, else what is wrong with it, in words.

    The form: ``data:image/<png|jpeg|webp|gif>[;<name>=<value>…];base64,<data>``, the data strict base64 (no
    whitespace or line breaks: servers decode it strictly), not empty.

    :param text: a string starting with ``data:``.
    """
    meta, comma, payload = text.partition(",")
    if not comma or not meta.lower().startswith("data:"):
        return "must be a data URI of the form data:image/png;base64,<data>"
    parts = meta[len("data:") :].split(";")
    if len(parts) < 2 or parts[-1].strip().lower() != "base64":
        return "must be a base64 data URI (data:image/png;base64,<data>), not raw or URL-encoded data"
    if image_type_from_mime(parts[0]) is None:
        return f"must be a {IMAGE_TYPES_TEXT} picture (data:image/png;base64,…), got type {parts[0].strip()!r:.40}"
    if not all(_TOKEN.fullmatch(part.strip()) for part in parts[1:-1]):
        return "has a malformed parameter before ';base64' (expected <name>=<value>)"
    if not payload:
        return "has no data after 'base64,'"
    if any(char.isspace() for char in payload):
        return "has whitespace or line breaks in its base64 data: encode it without wrapping (base64 -w 0)"
    if len(payload) % 4 or not _BASE64.fullmatch(payload):
        return "is not valid base64 data"
    return None
