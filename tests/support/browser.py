"""A real headless browser for tests: Debian's chromium driven over the DevTools protocol.

``ensure_chromium()`` installs the package where it is missing (the test command may run on
a fresh machine; a test never skips for want of it). ``Chromium(url)`` opens the page and
``evaluate(js)`` runs an expression in it and returns its JSON value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from itertools import count
from pathlib import Path
from typing import Any, Self

from websockets.sync.client import ClientConnection, connect

from tests.support.broker import free_port

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def ensure_chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=1200)
        path = shutil.which("chromium")
    assert path is not None, "chromium is not installed and could not be installed"
    return path


class Chromium:
    def __init__(self, url: str) -> None:
        self.url = url
        self.port = free_port()
        self.profile = Path(tempfile.mkdtemp(prefix="fixgw-chromium-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self._ids = count(1)

    def __enter__(self) -> Self:
        exe = ensure_chromium()
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
             f"--remote-debugging-port={self.port}", self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        target = None
        while target is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("chromium's DevTools endpoint did not come up within 60 s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                target = pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                pass
            if target is None:
                time.sleep(0.2)
        self.ws = connect(target, max_size=None, open_timeout=20)
        return self

    def evaluate(self, expression: str, timeout: float = 20) -> Any:
        assert self.ws is not None
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == mid:
                if "exceptionDetails" in msg.get("result", {}):
                    raise RuntimeError(f"page error: {msg['result']['exceptionDetails']}")
                return msg["result"]["result"].get("value")

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
