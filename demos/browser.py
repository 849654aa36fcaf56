"""Headless chromium for the pages the demos and tests drive (Debian's package, no downloads),
and the small site that serves a page and takes its report."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


class ReportSite:
    """Serves ``folder`` over HTTP and takes the page's report at POST /report."""

    def __init__(self, folder: Path):
        self.reports: queue.Queue = queue.Queue()
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def do_POST(self):
                if self.path != "/report":
                    return self.send_error(404)
                outer.reports.put(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass  # quiet: the caller prints what matters

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def page_report(chromium: str, folder: Path, page: str, timeout: float) -> dict:
    """Serve ``folder``, open ``page`` (a path with its query, under the folder) in headless
    chromium and return the first report the page POSTs to /report; TimeoutError if none
    comes within ``timeout`` seconds."""
    server = ReportSite(folder)
    try:
        with headless_chromium(chromium, f"{server.url}/{page}"):
            return server.reports.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"the browser page reported nothing within {timeout:g} s") from None
    finally:
        server.close()
