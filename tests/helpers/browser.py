"""
The real browser of the browser tests: Debian's ``chromium`` driven by Playwright's Python package.

The browser is found on ``PATH`` (or named by ``MJVIDEO_CHROMIUM``) and launched through ``executable_path``:
nothing is downloaded at run time. Without Chromium or Playwright a browser test skips, unless
``MJVIDEO_REQUIRE_BROWSER=1`` (set by ``./dev.sh test`` in CI), where it fails instead. Screenshots go to
``artifacts/browser/`` (a CI artifact).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO

ARTIFACTS = REPO / "artifacts" / "browser"
#: Playwright's default wait for one UI step, in milliseconds (generous for a loaded 2-core machine).
UI_TIMEOUT_MS = 60_000
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]


def chromium() -> str | None:
    """Debian's Chromium (or the one named by ``MJVIDEO_CHROMIUM``), if installed."""
    if configured := os.environ.get("MJVIDEO_CHROMIUM"):
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


def browser_or_skip() -> str:
    """The browser's path; skips the test (fails it with ``MJVIDEO_REQUIRE_BROWSER=1``) when there is none."""
    reasons = []
    found = chromium()
    if found is None:
        reasons.append("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("the playwright package is not installed (pip install -e '.[test]')")
    if reasons:
        message = "browser test needs a browser: " + "; ".join(reasons)
        if os.environ.get("MJVIDEO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (MJVIDEO_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    assert found is not None
    return found


def shot(target: Any, name: str) -> Path:
    """Screenshot ``target`` (a page or a locator) to ``artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


@contextlib.contextmanager
def shot_on_failure(page: Any, name: str = "99-failure") -> Iterator[None]:
    """Screenshot the page as ``name`` when the block fails."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            shot(page, name)
        raise


def generated_password(passwords_file: Path, user: str) -> str | None:
    """The simple auth manager's generated password of ``user``, once it has written it."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return str(json.loads(passwords_file.read_text())[user])
    return None


def log_in(page: Any, base_url: str, user: str, password: str, screenshot: str | None = None) -> None:
    """Log in through the simple auth manager's form; leaves the page on the UI's home."""
    page.goto(f"{base_url}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
