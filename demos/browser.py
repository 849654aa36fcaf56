"""Headless chromium for the pages the demos and tests drive (Debian's package, no downloads)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile

# Flags for a closed network: without the background-networking ones chromium keeps
# trying to reach Google's hosts.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    """The path of an installed chromium, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def headless_chromium(chromium: str, url: str):
    """Open ``url`` in headless chromium with a fresh profile; on exit stop the browser's whole
    process group (SIGTERM so it reaps its helpers, then SIGKILL) and delete the profile."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    browser = subprocess.Popen(
        [chromium, *HEADLESS_FLAGS, f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield browser
    finally:
        try:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # forced below
        finally:
            try:
                os.killpg(browser.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group is gone already
            browser.wait(timeout=10)
            shutil.rmtree(profile, ignore_errors=True)
