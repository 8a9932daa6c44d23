"""
What the API takes as a picture: classified when the DAG is parsed without touching any store, read from storage
when the task runs (streamed, capped, sniffed) and sent as a data URI.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from helpers.pictures import PICTURES

from airflow_provider_mjvideo.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyPermanentError,
    MidjourneyStorageReadError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.image_inputs import (
    DEFAULT_MAX_IMAGE_BYTES,
    check_image_input,
    check_image_list,
    resolve_image_input,
    resolve_image_list,
)
from airflow_provider_mjvideo.media_types import IMAGE_MIME, image_data_uri_problem
from airflow_provider_mjvideo.storage import redact_url
from airflow_provider_mjvideo.testing import media
from airflow_provider_mjvideo.validation import UNRESOLVED, check_http_url


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def decoded(uri: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a base64 data URI, decoded strictly."""
    meta, payload = uri.split(",", 1)
    assert meta.startswith("data:"), meta
    assert meta.endswith(";base64"), meta
    return meta[len("data:") : -len(";base64")], base64.b64decode(payload, validate=True)


PNG_URI = data_uri("image/png", PICTURES["png"])

# --------------------------------------------------------------------------- parse time: accepted forms

# (id, value, kind, the value kept)
ACCEPTED: list[tuple[str, Any, str, Any]] = [
    ("https", "https://cdn.example/grid.png?ex=65f&is=1", "url", "https://cdn.example/grid.png?ex=65f&is=1"),
    ("http-stripped", "  http://127.0.0.1:8080/media/1/0.png \n", "url", "http://127.0.0.1:8080/media/1/0.png"),
    *[
        (f"data-{kind}", data_uri(IMAGE_MIME[kind], raw), "data_uri", data_uri(IMAGE_MIME[kind], raw))
        for kind, raw in PICTURES.items()
    ],
    ("data-jpg-alias", data_uri("image/jpg", PICTURES["jpeg"]), "data_uri", data_uri("image/jpg", PICTURES["jpeg"])),
    ("data-uppercase", "DATA:IMAGE/PNG;BASE64,iVBORw0KGgo=", "data_uri", "DATA:IMAGE/PNG;BASE64,iVBORw0KGgo="),
    ("data-parameter", "data:image/png;name=frame.png;base64,iVBORw0KGgo=", "data_uri", None),
    ("file-uri", "file:///data/in/frame.png", "storage", "file:///data/in/frame.png"),
    ("file-localhost", "file://localhost/data/in/frame.png", "storage", "file://localhost/data/in/frame.png"),
    ("absolute-path", "/data/in/frame.png", "storage", "file:///data/in/frame.png"),
    ("path-with-space", "/data/my pictures/frame.png", "storage", "file:///data/my pictures/frame.png"),
    ("pathlib", Path("/data/in/frame.webp"), "storage", "file:///data/in/frame.webp"),
    ("s3", "s3://bucket/in/frame.png", "storage", "s3://bucket/in/frame.png"),
    ("s3-conn-id", "s3://aws_default@bucket/in/frame.png", "storage", "s3://aws_default@bucket/in/frame.png"),
    ("gs", "gs://bucket/frame.jpg", "storage", "gs://bucket/frame.jpg"),
    ("memory", "memory://mjtest@bucket/in/frame.png", "storage", "memory://mjtest@bucket/in/frame.png"),
    ("no-filesystem-yet", "nosuchfs://host/frame.png", "storage", "nosuchfs://host/frame.png"),
]


@pytest.mark.parametrize(("value", "kind", "kept"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_every_accepted_form_is_classified_without_touching_storage(
    value, kind, kept, memory_store, local_file_opens
) -> None:
    with local_file_opens() as opened:
        picture = check_image_input("end_image", value)
    assert picture is not None
    assert (picture.parameter, picture.kind) == ("end_image", kind)
    assert picture.value == (kept if kept is not None else value)
    assert opened == []
    assert memory_store.calls == []


def test_an_object_storage_path_is_kept_as_it_is(memory_store, local_file_opens) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = ObjectStoragePath("memory://mjtest@bucket/in/frame.png", protocol="memory")
    with local_file_opens() as opened:
        picture = check_image_input("image", path)
    assert picture is not None
    assert (picture.kind, picture.value) == ("storage", path)
    assert (opened, memory_store.calls) == ([], [])


@pytest.mark.parametrize("value", [UNRESOLVED, "{{ ti.xcom_pull('upscale') }}", "{% if x %}/a.png{% endif %}"])
def test_templated_values_are_skipped_at_parse_time_and_refused_at_run_time(value) -> None:
    assert check_image_input("image", value) is None
    with pytest.raises(MidjourneyValidationError) as info:
        check_image_input("image", value, allow_unresolved=False)
    assert info.value.parameter == "image"


# --------------------------------------------------------------------------- parse time: rejections

# (id, value, what the message says)
REJECTED: list[tuple[str, Any, str]] = [
    ("none", None, "must be an http(s) URL, a data:image/…;base64 URI, or a stored file"),
    ("number", 42, "must be an http(s) URL"),
    ("empty", "", "must be an http(s) URL"),
    ("blank", "  \n", "must be an http(s) URL"),
    ("dict", {"url": "https://cdn.example/a.png"}, "must be an http(s) URL"),
    ("list", ["https://cdn.example/a.png"], "must be an http(s) URL"),
    ("bytes-path", b"/data/in/frame.png", "must be an http(s) URL"),
    ("relative", "frame.png", "a relative path cannot be read from every worker"),
    ("dot-relative", "./in/frame.png", "a relative path"),
    ("home", "~/frame.png", "a relative path"),
    ("windows", "C:\\pictures\\frame.png", "a relative path"),
    ("mailto", "mailto:someone@example.com", "must be an http(s) URL"),
    ("http-no-host", "http://", "must be an http(s) URL"),
    ("https-space", "https://cdn.example/a frame.png", "must be an http(s) URL"),
    ("s3-nothing", "s3://", "names no file"),
    ("gs-root", "gs:///", "names no file"),
    ("s3-folder", "s3://bucket/in/", "names a folder"),
    ("local-folder", "/data/in/", "names a folder"),
    ("file-nothing", "file://", "names no file"),
    ("file-remote-host", "file://server/share/frame.png", "a local file URI with an absolute path"),
    ("data-bad-base64", "data:image/png;base64,@@@not-base64@@@", "is not valid base64"),
    ("data-bad-length", "data:image/png;base64,iVBORw0KGgo", "is not valid base64"),
    ("data-padding-inside", "data:image/png;base64,iV=BORw0KGgo=", "is not valid base64"),
    ("data-empty", "data:image/png;base64,", "has no data"),
    ("data-wrapped", "data:image/png;base64,iVBORw0K\nGgo=", "whitespace or line breaks"),
    ("data-raw", "data:image/png,rawbytes", "must be a base64 data URI"),
    ("data-no-comma", "data:image/png;base64", "must be a data URI of the form"),
    ("data-text", "data:text/plain;base64,aGVsbG8=", "must be a PNG, JPEG, WebP or GIF picture"),
    ("data-svg", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=", "must be a PNG, JPEG, WebP or GIF picture"),
    ("data-no-type", "data:;base64,aGk=", "must be a PNG, JPEG, WebP or GIF picture"),
    ("data-bad-parameter", "data:image/png;x;base64,aGk=", "malformed parameter"),
]


@pytest.mark.parametrize(("value", "problem"), [case[1:] for case in REJECTED], ids=[case[0] for case in REJECTED])
def test_every_rejection_names_the_parameter_without_touching_storage(
    value, problem, memory_store, local_file_opens
) -> None:
    with local_file_opens() as opened, pytest.raises(MidjourneyValidationError) as info:
        check_image_input("end_image", value)
    assert info.value.parameter == "end_image"
    assert "'end_image'" in str(info.value)
    assert problem in info.value.problem
    assert isinstance(info.value, MidjourneyPermanentError)
    assert (opened, memory_store.calls) == ([], [])


DATA_CASES = [case for case in ACCEPTED + REJECTED if isinstance(case[1], str) and case[1][:5].lower() == "data:"]


@pytest.mark.parametrize("case", DATA_CASES, ids=[case[0] for case in DATA_CASES])
def test_check_http_url_applies_the_same_data_uri_rule(case) -> None:
    value = case[1]
    problem = image_data_uri_problem(value)
    if problem is None:
        assert check_http_url("image", value, allow_data_uri=True) == value
    else:
        with pytest.raises(MidjourneyValidationError) as info:
            check_http_url("image", value, allow_data_uri=True)
        assert info.value.problem == problem
    with pytest.raises(MidjourneyValidationError):
        check_http_url("notify_hook", value)  # without allow_data_uri, no data URI passes


# --------------------------------------------------------------------------- parse time: lists of pictures

# (id, value, (parameter, kind) of each picture, or None when some are only known later)
LISTS: list[tuple[str, Any, list[tuple[str, str]] | None]] = [
    ("none", None, []),
    ("empty", [], []),
    ("one-string", "https://cdn.example/a.png", [("images", "url")]),
    ("one-path", Path("/data/a.png"), [("images", "storage")]),
    (
        "mixed",
        ["https://cdn.example/a.png", "/data/b.png", PNG_URI, "s3://bucket/c.webp"],
        [("images[0]", "url"), ("images[1]", "storage"), ("images[2]", "data_uri"), ("images[3]", "storage")],
    ),
    ("tuple", ("gs://bucket/a.png",), [("images[0]", "storage")]),
    ("rendered-json", '["https://cdn.example/a.png", "/data/b.png"]', [("images[0]", "url"), ("images[1]", "storage")]),
    ("templated-item", ["https://cdn.example/a.png", "{{ ti.xcom_pull('grid') }}"], None),
    ("templated-list", "{{ params.images }}", None),
]


@pytest.mark.parametrize(("value", "expected"), [case[1:] for case in LISTS], ids=[case[0] for case in LISTS])
def test_image_lists(value, expected, local_file_opens) -> None:
    with local_file_opens() as opened:
        checked = check_image_list("images", value)
    assert opened == []
    if expected is None:
        assert checked is None
    else:
        assert checked is not None
        assert [(picture.parameter, picture.kind) for picture in checked] == expected


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        (["https://cdn.example/a.png", "/data/ok.png", "frame.png"], "images[2]"),
        ([None], "images[0]"),
        ([PNG_URI, "data:image/png;base64,@@"], "images[1]"),
        ({"a": "https://cdn.example/a.png"}, "images"),
        (7, "images"),
        ('["https://cdn.example/a.png", ', "images"),
        ('["https://cdn.example/a.png", "cat.png"]', "images[1]"),
    ],
)
def test_a_bad_picture_in_a_list_is_named_by_its_position(value, parameter) -> None:
    with pytest.raises(MidjourneyValidationError) as info:
        check_image_list("images", value)
    assert info.value.parameter == parameter


def test_templated_items_are_refused_at_run_time() -> None:
    with pytest.raises(MidjourneyValidationError) as info:
        check_image_list("images", ["https://cdn.example/a.png", "{{ x }}"], allow_unresolved=False)
    assert info.value.parameter == "images[1]"


# --------------------------------------------------------------------------- run time: reading stored pictures


def _store(kind_of_store: str, data: bytes, tmp_path: Path, memory_store, name: str = "frame.bin") -> Any:
    """Put ``data`` in a store and return how a DAG would name it."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if kind_of_store.startswith("memory"):
        memory_store.pipe_file(f"/bucket/in/{name}", data)
        memory_store.calls.clear()
        uri = f"memory://mjtest@bucket/in/{name}"
        return ObjectStoragePath(uri, protocol="memory") if kind_of_store == "memory-path" else uri
    path = tmp_path / name
    path.write_bytes(data)
    return {
        "file-uri": f"file://{path}",
        "absolute-path": str(path),
        "pathlib": path,
        "file-path": ObjectStoragePath(f"file://{path}", protocol="file"),
    }[kind_of_store]


STORES = ["file-uri", "absolute-path", "pathlib", "file-path", "memory-uri", "memory-path"]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("kind", list(PICTURES))
def test_a_stored_picture_is_sent_as_a_data_uri_of_the_type_its_bytes_have(kind, store, tmp_path, memory_store):
    # The file name says nothing (frame.bin): the type comes from the bytes.
    value = _store(store, PICTURES[kind], tmp_path, memory_store)

    uri = resolve_image_input("image", value)

    assert decoded(uri) == (IMAGE_MIME[kind], PICTURES[kind])
    assert image_data_uri_problem(uri) is None  # what is sent passes the rule a literal data URI must pass
    if store.startswith("memory"):
        assert [call for call, _path in memory_store.calls] == ["info", "open"]


def test_a_misleading_extension_does_not_decide_the_type(tmp_path, memory_store) -> None:
    value = _store("file-uri", PICTURES["jpeg"], tmp_path, memory_store, name="frame.png")
    assert decoded(resolve_image_input("image", value))[0] == "image/jpeg"


def test_a_large_picture_is_read_in_chunks_and_encoded_exactly(tmp_path, memory_store) -> None:
    # A real PNG followed by filler: 3 MB read 64 KiB at a time (chunks of a size that is no multiple of 3).
    data = PICTURES["png"] + bytes(range(256)) * (3 * 4096)
    value = _store("memory-uri", data, tmp_path, memory_store)
    uri = resolve_image_input("image", value, chunk_size=65536)
    assert decoded(uri) == ("image/png", data)


@pytest.mark.parametrize(
    "value",
    ["https://cdn.example/frame.png?sig=1", PNG_URI, "DATA:IMAGE/PNG;BASE64,iVBORw0KGgo="],
)
def test_urls_and_data_uris_are_sent_unchanged_without_touching_storage(value, memory_store, local_file_opens):
    with local_file_opens() as opened:
        assert resolve_image_input("image", value) == value
    assert (opened, memory_store.calls) == ([], [])


@pytest.mark.parametrize("store", ["file-uri", "memory-uri"])
def test_a_file_over_the_cap_is_refused_by_its_size_before_it_is_read(store, tmp_path, memory_store, local_file_opens):
    value = _store(store, PICTURES["png"] + bytes(2000), tmp_path, memory_store)
    size = len(PICTURES["png"]) + 2000
    with local_file_opens() as opened, pytest.raises(MidjourneyValidationError) as info:
        resolve_image_input("images[1]", value, max_bytes=2048)
    assert info.value.parameter == "images[1]"
    assert f"is {size} bytes" in info.value.problem
    assert "over the max_image_bytes cap of 2048 bytes" in info.value.problem
    assert not [path for event, path in opened if event == "open" and str(path).endswith("frame.bin")]
    if store == "memory-uri":
        assert [call for call, _path in memory_store.calls] == ["info"]  # never opened


def test_a_file_whose_size_the_store_does_not_tell_is_capped_while_streaming(tmp_path, memory_store) -> None:
    memory_store.knows_sizes = False
    value = _store("memory-uri", PICTURES["png"] + bytes(5000), tmp_path, memory_store)
    with pytest.raises(MidjourneyValidationError, match="holds more than 2048 bytes") as info:
        resolve_image_input("image", value, max_bytes=2048, chunk_size=512)
    assert info.value.parameter == "image"
    assert [call for call, _path in memory_store.calls] == ["info", "open"]


def test_a_file_of_exactly_the_cap_is_accepted(tmp_path, memory_store) -> None:
    data = PICTURES["gif"]
    value = _store("file-uri", data, tmp_path, memory_store)
    assert decoded(resolve_image_input("image", value, max_bytes=len(data))) == ("image/gif", data)


# (id, bytes, what the message calls them)
NOT_PICTURES = [
    ("html", b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head></html>", "an HTML page"),
    ("text", b"a list of prompts\nanother one\n", "text"),
    ("json", b'{"error": "expired"}', "JSON text"),
    ("mp4", media.clip_bytes(0), "an MP4/QuickTime video"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', "an XML or SVG document"),
    ("empty", b"", "an empty file"),
    ("cut-png-signature", b"\x89PN", "unknown bytes (89 50 4e"),
    ("binary", bytes(range(64)), "unknown bytes (00 01 02 03"),
]


@pytest.mark.parametrize(("data", "found"), [case[1:] for case in NOT_PICTURES], ids=[case[0] for case in NOT_PICTURES])
@pytest.mark.parametrize("store", ["file-uri", "memory-uri"])
def test_a_file_that_is_not_a_picture_is_refused_saying_what_it_is(store, data, found, tmp_path, memory_store):
    value = _store(store, data, tmp_path, memory_store, name="frame.png")
    with pytest.raises(MidjourneyValidationError) as info:
        resolve_image_input("end_image", value)
    assert info.value.parameter == "end_image"
    assert f"frame.png is {found}" in info.value.problem
    assert info.value.problem.endswith("not a PNG, JPEG, WebP or GIF picture")


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        ("file-missing", "no such file: file://"),
        ("file-folder", "is a folder"),
        ("memory-missing", "no such file"),
        ("memory-folder", "is a folder"),
    ],
)
def test_a_missing_file_or_a_folder_is_refused_naming_the_parameter(store, problem, tmp_path, memory_store):
    memory_store.pipe_file("/bucket/in/sub/frame.png", PICTURES["png"])
    value = {
        "file-missing": f"file://{tmp_path}/nowhere/frame.png",
        "file-folder": str(tmp_path),
        "memory-missing": "memory://mjtest@bucket/in/nothing.png",
        "memory-folder": "memory://mjtest@bucket/in/sub",
    }[store]
    with pytest.raises(MidjourneyValidationError) as info:
        resolve_image_input("image", value)
    assert info.value.parameter == "image"
    assert problem in info.value.problem


def test_a_store_that_refuses_the_read_is_an_error_naming_the_parameter_that_retries_may_fix(
    tmp_path, memory_store
) -> None:
    value = _store("memory-uri", PICTURES["png"], tmp_path, memory_store)
    memory_store.refuse = PermissionError("Access Denied")
    with pytest.raises(MidjourneyStorageReadError) as info:
        resolve_image_input("images[0]", value)
    assert info.value.parameter == "images[0]"
    assert str(info.value) == (
        "Cannot read 'images[0]' from memory://mjtest@/bucket/in/frame.bin: PermissionError: Access Denied"
    )
    assert not isinstance(info.value, MidjourneyPermanentError)


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("s3://bucket/in/frame.png", "apache-airflow-providers-amazon[s3fs]"),
        ("s3://aws_default@bucket/in/frame.png", "apache-airflow-providers-amazon"),
        ("gs://bucket/frame.png", "apache-airflow-providers-google"),
        ("abfs://container/frame.png", "apache-airflow-providers-microsoft-azure"),
        ("sftp://host/frame.png", "paramiko"),
        ("nosuchfs://host/frame.png", "attach(protocol='nosuchfs'"),
    ],
)
def test_a_scheme_without_a_filesystem_names_the_parameter_and_what_to_install(uri, needle) -> None:
    with pytest.raises(MidjourneyConfigurationError) as info:
        resolve_image_input("end_image", uri)
    assert str(info.value).startswith("'end_image': ")
    assert needle in str(info.value)


def test_a_list_resolves_every_filesystem_before_reading_any_file(tmp_path, memory_store) -> None:
    stored = _store("memory-uri", PICTURES["webp"], tmp_path, memory_store)
    local = _store("absolute-path", PICTURES["gif"], tmp_path, memory_store, name="b.gif")
    resolved = resolve_image_list("images", ["https://cdn.example/a.png", stored, PNG_URI, local])
    assert resolved[0] == "https://cdn.example/a.png"
    assert decoded(resolved[1]) == ("image/webp", PICTURES["webp"])
    assert resolved[2] == PNG_URI
    assert decoded(resolved[3]) == ("image/gif", PICTURES["gif"])

    memory_store.calls.clear()
    with pytest.raises(MidjourneyConfigurationError, match=r"^'images\[1\]': .*nosuchfs"):
        resolve_image_list("images", [stored, "nosuchfs://host/b.png"])
    assert memory_store.calls == []  # the first picture was not read for nothing
    assert resolve_image_list("images", None) == []


@pytest.mark.parametrize("cap", [0, -1, "big", True, 1.5])
def test_the_cap_itself_is_checked(cap) -> None:
    with pytest.raises(MidjourneyValidationError) as info:
        resolve_image_input("image", "https://cdn.example/a.png", max_bytes=cap)
    assert info.value.parameter == "max_image_bytes"


def test_the_default_cap_is_10_mib() -> None:
    assert DEFAULT_MAX_IMAGE_BYTES == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("sftp://me:hunter2@host/in/a.png", "sftp://me:***@host/in/a.png"),
        ("https://cdn.example/a.png?X-Amz-Signature=abc", "https://cdn.example/a.png?…"),
        ("s3://aws_default@bucket/a.png", "s3://aws_default@bucket/a.png"),
    ],
)
def test_messages_show_storage_uris_without_passwords_or_signatures(uri, shown) -> None:
    assert redact_url(uri) == shown
