"""
The hook's image pipeline over real HTTP against every server flavour of the emulator: imagine, buttons,
upscale, animate an upscale, modal confirmation, the shared submit codes and resend rules, and bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import SECRET_KEY, connection_json

from airflow_provider_mjvideo.exceptions import (
    MidjourneyBannedPromptError,
    MidjourneyNotFoundError,
    MidjourneyRejectedError,
    MidjourneySubmitOutcomeUnknownError,
    MidjourneyTaskFailedError,
    MidjourneyValidationError,
)
from airflow_provider_mjvideo.hooks.midjourney import MidjourneyHook
from airflow_provider_mjvideo.models import TaskAction, TaskStatus
from airflow_provider_mjvideo.testing import MidjourneyEmulator

FLAVORS = ["trueai", "newapi", "novicezk"]
IMAGE = "https://cdn.example.com/first.png"
PNG_URI = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def make_hook(
    start_emulator: Callable[..., MidjourneyEmulator], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[MidjourneyHook, MidjourneyEmulator]]:
    """``make_hook(flavor, **emulator_fields)``: an emulator of that flavour and a hook on it (tiny backoff)."""

    def make(flavor: str = "trueai", **fields: Any) -> tuple[MidjourneyHook, MidjourneyEmulator]:
        emu = start_emulator(api_key=SECRET_KEY, flavor=flavor, **fields)
        monkeypatch.setenv("AIRFLOW_CONN_MJ_IMAGES", connection_json(emu))
        return MidjourneyHook("mj_images", retry_delay=0.01, retry_max_delay=0.02), emu

    return make


def finished(hook: MidjourneyHook, emu: MidjourneyEmulator, mj_task_id: str, expect: str = "auto") -> Any:
    emu.complete_task(mj_task_id)
    return hook.wait_for_task(mj_task_id, poll_interval=0.05, timeout=10, expect=expect)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_imagine_then_upscale_gives_a_grid_then_a_single_picture(make_hook, flavor: str) -> None:
    hook, emu = make_hook(flavor)

    grid = finished(hook, emu, hook.submit_imagine("a lighthouse at dawn", bot_type="niji_journey"))
    upscale_id = hook.upscale(grid.id, 1)
    upscaled = finished(hook, emu, upscale_id)

    assert (grid.action, grid.kind, grid.status) == (TaskAction.IMAGINE, "image", TaskStatus.SUCCESS)
    assert grid.image_urls[0] == grid.image_url == f"{emu.root_url}/media/{grid.id}/grid.png"
    assert len(grid.image_urls) == (5 if flavor == "trueai" else 1)  # trueai also lists the four singles
    assert [b.name for b in grid.buttons][:4] == ["U1", "U2", "U3", "U4"]
    (imagine_body,) = [r.json for r in emu.requests_to("imagine")]
    assert imagine_body["botType"] == "NIJI_JOURNEY"
    (action_body,) = [r.json for r in emu.requests_to("action")]
    assert action_body["taskId"] == grid.id
    assert action_body["customId"] == grid.upscale_button(1).custom_id
    assert "::upsample::2::" in action_body["customId"]  # index 1 is Midjourney's U2
    assert (upscaled.action, upscaled.kind, upscaled.image_url) == (
        TaskAction.UPSCALE,
        "image",
        f"{emu.root_url}/media/{upscale_id}/0.png",
    )
    assert emu.counters["accepted"]["imagine"] == emu.counters["accepted"]["action"] == 1


@pytest.mark.parametrize("flavor", ["trueai", "newapi"])
def test_a_video_from_an_upscale_takes_its_picture_as_the_first_frame(make_hook, flavor: str) -> None:
    hook, emu = make_hook(flavor)
    grid = finished(hook, emu, hook.submit_imagine("a fox"))
    upscaled = finished(hook, emu, hook.upscale(grid.id, 0))

    video_id = hook.submit_video("the fox runs", image_task_id=upscaled.id)
    video = finished(hook, emu, video_id)

    (body,) = [r.json for r in emu.requests_to("submit")]
    assert body["image"] == upscaled.image_url
    assert (video.kind, len(video.video_urls)) == ("video", 4)


def test_the_open_source_proxy_has_no_video_route(make_hook) -> None:
    hook, emu = make_hook("novicezk", video_route=False)
    grid = finished(hook, emu, hook.submit_imagine("a fox"))
    upscaled = finished(hook, emu, hook.upscale(grid.id, 0))

    with pytest.raises(MidjourneyNotFoundError) as info:
        hook.submit_video("the fox runs", image_task_id=upscaled.id)

    assert info.value.http_status == 404
    assert emu.counters["accepted"]["submit"] == 0


@pytest.mark.parametrize(
    ("flavor", "error", "words"),
    [
        ("newapi", MidjourneyRejectedError, "unknown_action"),
        ("novicezk", MidjourneyRejectedError, "Unsupported action"),
    ],
)
def test_servers_that_refuse_animate_buttons_name_it(make_hook, flavor: str, error: type, words: str) -> None:
    hook, emu = make_hook(flavor)
    grid = finished(hook, emu, hook.submit_imagine("a fox"))
    upscaled = finished(hook, emu, hook.upscale(grid.id, 0))
    animate = next(button for button in upscaled.buttons if "animate_high" in button.custom_id)

    with pytest.raises(error) as info:
        hook.submit_action(upscaled.id, animate.custom_id)

    assert info.value.code == 4
    assert words in str(info.value)
    assert emu.counters["accepted"]["action"] == 1  # the upscale only


def test_an_animate_button_on_trueai_makes_a_video(make_hook) -> None:
    hook, emu = make_hook("trueai")
    grid = finished(hook, emu, hook.submit_imagine("a fox"))
    upscaled = finished(hook, emu, hook.upscale(grid.id, 2))

    video = finished(hook, emu, hook.submit_action(upscaled.id, upscaled.button("Animate (Low motion)").custom_id))

    assert (video.action, video.kind, len(video.video_urls)) == (TaskAction.VIDEO, "video", 4)


@pytest.mark.parametrize("flavor", ["trueai", "newapi"])  # trueai answers code 21, new-api rewrites it to 1
def test_a_remix_waits_in_modal_until_confirmed(make_hook, flavor: str) -> None:
    hook, emu = make_hook(flavor, remix=True)
    grid = finished(hook, emu, hook.submit_imagine("a fox"))

    variation_id = hook.submit_action(grid.id, grid.button("V1").custom_id)
    with pytest.raises(MidjourneyTaskFailedError) as waiting:
        hook.wait_for_task(variation_id, poll_interval=0.05, timeout=10)
    confirmed_id = hook.submit_modal(variation_id, "a red fox in snow")
    variation = finished(hook, emu, confirmed_id)

    assert waiting.value.status == "MODAL"
    assert "modal_prompt confirms it" in str(waiting.value)
    assert [r.json for r in emu.requests_to("modal")] == [
        {"taskId": variation_id, "prompt": "a red fox in snow", "maskBase64": ""}
    ]
    assert confirmed_id == variation_id
    assert (variation.status, variation.action) == (TaskStatus.SUCCESS, TaskAction.VARIATION)
    assert emu.counters["accepted"]["modal"] == 1


# ------------------------------------------------------------------------------------------ codes and resends


ROUTES: dict[str, Callable[[MidjourneyHook, str], str]] = {
    "imagine": lambda hook, parent: hook.submit_imagine("a fox"),
    "action": lambda hook, parent: hook.submit_action(parent, hook.get_task(parent).button("U1").custom_id),
    "modal": lambda hook, parent: hook.submit_modal(parent, "a fox"),
    "submit": lambda hook, parent: hook.submit_video("a fox", IMAGE),
}


@pytest.fixture(params=list(ROUTES))
def route(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def parent_for(hook: MidjourneyHook, emu: MidjourneyEmulator, route: str) -> str:
    """A task the route can act on: a finished grid (action), a task waiting in MODAL (modal)."""
    if route == "action":
        return str(finished(hook, emu, hook.submit_imagine("a grid")).id)
    if route == "modal":
        grid = finished(hook, emu, hook.submit_imagine("a grid"))
        return hook.submit_action(grid.id, grid.button("V1").custom_id)
    return ""


@pytest.mark.parametrize("code", [21, 22])
def test_every_route_accepts_codes_21_and_22(make_hook, route: str, code: int) -> None:
    hook, emu = make_hook("trueai", remix=route == "modal")
    parent = parent_for(hook, emu, route)
    before = dict(emu.counters["accepted"])
    emu.config.submit_codes = [code]

    mj_task_id = ROUTES[route](hook, parent)

    assert mj_task_id
    assert emu.counters["accepted"][route] == before[route] + 1


@pytest.mark.parametrize(
    ("code", "error"), [(24, MidjourneyBannedPromptError), (4, MidjourneyRejectedError), (3, MidjourneyNotFoundError)]
)
def test_every_route_fails_permanent_codes_without_resending(make_hook, route: str, code: int, error: type) -> None:
    hook, emu = make_hook("trueai", remix=route == "modal")
    parent = parent_for(hook, emu, route)
    sent = emu.count(route)
    emu.config.submit_codes = [code]

    with pytest.raises(error) as info:
        ROUTES[route](hook, parent)

    assert info.value.code == code
    assert emu.count(route) == sent + 1


@pytest.mark.parametrize("code", [23, 30])
def test_every_route_resends_when_the_server_certainly_did_nothing(make_hook, route: str, code: int) -> None:
    hook, emu = make_hook("trueai", remix=route == "modal")
    parent = parent_for(hook, emu, route)
    sent = emu.count(route)
    emu.config.submit_codes = [code]

    assert ROUTES[route](hook, parent)
    assert emu.count(route) == sent + 2


def test_every_route_never_resends_after_an_ambiguous_failure(make_hook, route: str) -> None:
    hook, emu = make_hook("trueai", remix=route == "modal")
    parent = parent_for(hook, emu, route)
    sent = emu.count(route)
    emu.config.fail_next = [("submit", "500")]

    with pytest.raises(MidjourneySubmitOutcomeUnknownError):
        ROUTES[route](hook, parent)

    assert emu.count(route) == sent + 1


# ------------------------------------------------------------------------------------------ bad input


BAD_CALLS: list[tuple[str, str, Callable[[MidjourneyHook], Any]]] = [
    ("index-4", "index", lambda hook: hook.upscale("17960000000000001", 4)),
    ("index-negative", "index", lambda hook: hook.upscale("17960000000000001", -1)),
    ("bot-type-typo", "bot_type", lambda hook: hook.submit_imagine("a fox", bot_type="MIDJOURNEY")),
    ("imagine-empty-prompt", "prompt", lambda hook: hook.submit_imagine("  ")),
    ("imagine-bad-image", "images[1]", lambda hook: hook.submit_imagine("a fox", images=[IMAGE, "data:image/png,raw"])),
    ("imagine-clashing-extra", "extra_body", lambda hook: hook.submit_imagine("a", extra_body={"botType": "X"})),
    (
        "image-and-image-task",
        "image_task_id",
        lambda hook: hook.submit_video("a fox", IMAGE, image_task_id="17960000000000001"),
    ),
    ("no-first-frame", "image", lambda hook: hook.submit_video("a fox")),
    ("action-empty-custom-id", "custom_id", lambda hook: hook.submit_action("17960000000000001", "")),
    ("action-bad-task-id", "mj_task_id", lambda hook: hook.submit_action("1/2", "MJ::JOB::upsample::1::x")),
    ("modal-empty-prompt", "prompt", lambda hook: hook.submit_modal("17960000000000001", "")),
    ("max-image-bytes", "max_image_bytes", lambda hook: hook.submit_imagine("a fox", max_image_bytes=0)),
]


@pytest.mark.parametrize(("parameter", "call"), [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS])
def test_bad_input_is_named_and_sends_nothing(make_hook, parameter: str, call: Callable[[MidjourneyHook], Any]) -> None:
    hook, emu = make_hook("trueai")

    with pytest.raises(MidjourneyValidationError) as info:
        call(hook)

    assert info.value.parameter == parameter
    assert emu.requests == []


@pytest.mark.parametrize(
    ("wanted", "words"),
    [
        ("U5", "has no button 'U5'; its buttons: U1, U2, U3, U4, V1, V2, V3, V4, 🔄"),
        ("MJ::JOB::upsample::9::nope", "has no button 'MJ::JOB::upsample::9::nope'"),
    ],
)
def test_an_unknown_button_names_the_buttons_the_task_has(make_hook, wanted: str, words: str) -> None:
    hook, emu = make_hook("trueai")
    grid = finished(hook, emu, hook.submit_imagine("a fox"))

    with pytest.raises(MidjourneyValidationError) as info:
        grid.button(wanted)

    assert words in str(info.value)
    assert emu.count("action") == 0


@pytest.mark.parametrize(
    ("label", "custom_id_part"), [("u3", "upsample::3"), ("V2", "variation::2"), ("🔄", "reroll::0")]
)
def test_buttons_are_found_by_label_any_case_or_emoji(make_hook, label: str, custom_id_part: str) -> None:
    hook, emu = make_hook("trueai")
    grid = finished(hook, emu, hook.submit_imagine("a fox"))

    assert custom_id_part in grid.button(label).custom_id
    assert grid.button(grid.button(label).custom_id) == grid.button(label)


def test_an_unfinished_grid_cannot_be_upscaled_and_nothing_is_submitted(make_hook) -> None:
    hook, emu = make_hook("trueai", image_duration=60)
    grid_id = hook.submit_imagine("a fox")

    with pytest.raises(MidjourneyValidationError, match=r"has no upscale button for image 0 \(U1\); its buttons: none"):
        hook.upscale(grid_id, 0)

    assert emu.count("action") == 0


@pytest.mark.parametrize("grid_action", ["imagine", "variation"])
def test_a_grid_is_not_a_first_frame(make_hook, grid_action: str) -> None:
    hook, emu = make_hook("trueai")
    grid = finished(hook, emu, hook.submit_imagine("a fox"))
    if grid_action == "variation":
        grid = finished(hook, emu, hook.submit_action(grid.id, grid.button("V1").custom_id))

    with pytest.raises(MidjourneyValidationError, match=r"is a grid of four images .* upscale one first"):
        hook.submit_video("the fox runs", image_task_id=grid.id)

    assert emu.count("submit") == 0


def test_image_prompts_go_in_front_of_the_prompt_or_in_base64_array(make_hook) -> None:
    hook, emu = make_hook("trueai")

    hook.submit_imagine("a fox", images=[IMAGE, PNG_URI])

    (body,) = [r.json for r in emu.requests_to("imagine")]
    assert body["prompt"] == f"{IMAGE} a fox"
    assert body["base64Array"] == [PNG_URI]
    ((image_prompt,),) = [task["image_prompts"] for task in emu.tasks.values()]
    assert image_prompt["mime"] == "image/png"


# ------------------------------------------------------------------------------------------ pictures from storage


def test_stored_pictures_are_sent_as_data_uris(make_hook, tmp_path) -> None:
    from airflow_provider_mjvideo.testing import media

    hook, emu = make_hook("trueai")
    frame = tmp_path / "frame.png"
    frame.write_bytes(media.image_png(0))

    hook.submit_video("a fox runs", frame.as_uri(), end_image=str(frame))
    hook.submit_imagine("a fox", images=[frame.as_uri()])

    (video,) = [r.json for r in emu.requests_to("submit")]
    assert video["image"] == video["endImage"]
    assert video["image"].startswith("data:image/png;base64,")
    (imagine,) = [r.json for r in emu.requests_to("imagine")]
    assert imagine["base64Array"] == [video["image"]]
    assert imagine["prompt"] == "a fox"


@pytest.mark.parametrize(
    ("name", "content", "parameter", "words"),
    [
        pytest.param(None, None, "image", "no such file", id="missing-file"),
        pytest.param("page.png", b"<!doctype html><html>", "image", "HTML", id="not-a-picture"),
        pytest.param("big.png", None, "image", "max_image_bytes", id="over-the-cap"),
    ],
)
def test_a_bad_stored_picture_fails_before_any_request(
    make_hook, tmp_path, name: str | None, content: bytes | None, parameter: str, words: str
) -> None:
    from airflow_provider_mjvideo.testing import media

    hook, emu = make_hook("trueai")
    path = tmp_path / (name or "absent.png")
    if name == "big.png":
        path.write_bytes(media.image_png(0) + bytes(4096))
    elif content is not None:
        path.write_bytes(content)

    with pytest.raises(MidjourneyValidationError) as info:
        hook.submit_video("a fox", path.as_uri(), max_image_bytes=1024)

    assert info.value.parameter == parameter
    assert words.lower() in str(info.value).lower()
    assert emu.requests == []
