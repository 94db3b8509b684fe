"""A headless chromium driven through the DevTools protocol, with no dependency.

`--remote-debugging-pipe` speaks the protocol over two pipes (chromium reads commands on
fd 3 and writes replies and events on fd 4, each message JSON ended by a NUL byte), so no
websocket client is needed. One `Browser` is one chromium process with one page; it
records every request the page makes, every console message and every uncaught
exception while it lives.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time


class CDPError(RuntimeError):
    pass


def _above_9(fd: int) -> int:
    """The same pipe end on an inheritable fd >= 10 (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """`with Browser(chromium) as b: b.goto(url); b.eval("1 + 1")`."""

    def __init__(self, executable: str, width: int = 1280, height: int = 1600,
                 timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory()
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium's ends move above fd 9 so that `3<&r 4>&w` cannot clobber one with
        # the other (under pytest's capture, the pipes can get fds 3 and 4 themselves).
        to_chrome_r, from_chrome_w = (_above_9(to_chrome_r), _above_9(from_chrome_w))
        # bash (dash takes no fd above 9) maps our pipe ends onto chromium's fds 3 and 4.
        script = f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        args = [executable, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--mute-audio",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                # Offline like CI: every host but 127.0.0.1 is unreachable.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                f"--window-size={width},{height}", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}", "about:blank"]
        self._log = open(os.path.join(self._profile.name, "stderr.log"), "w+b")
        self._proc = subprocess.Popen(["bash", "-c", script, "bash", *args],
                                      pass_fds=(to_chrome_r, from_chrome_w),
                                      stdout=subprocess.DEVNULL, stderr=self._log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")

    # -- the protocol ------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()

    _closed = False

    def send(self, method: str, **params):
        """Send one command (to the page once attached) and return its result."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise CDPError(f"chromium is gone ({method}): {self.stderr()[-2000:]}") from None
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while msg["id"] not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CDPError(f"no reply to {method}: {self.stderr()[-2000:]}")
                self._cond.wait(left)
            reply = self._replies.pop(msg["id"])
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for_event(self, method: str, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                for event in self.events:
                    if event["method"] == method:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"no {method} event")
                self._cond.wait(left)

    # -- what the tests use ------------------------------------------------------------
    def goto(self, url: str) -> None:
        """Load `url` and wait for its load event."""
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def eval(self, expression: str, await_promise: bool = True):
        """The JSON value of a JavaScript expression (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 20.0) -> bool:
        """Poll a JavaScript condition until it is true; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.eval(expression):
                return True
            time.sleep(0.1)
        return False

    def screenshot(self, path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))

    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]

    def failed_requests(self) -> list[str]:
        """Requests that failed or came back with an HTTP error."""
        urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in self.events if e["method"] == "Network.requestWillBeSent"}
        failed = []
        for e in self.events:
            p = e["params"]
            if e["method"] == "Network.loadingFailed" and not p.get("canceled"):
                failed.append(f"{urls.get(p['requestId'])}: {p.get('errorText')}")
            elif e["method"] == "Network.responseReceived" and p["response"]["status"] >= 400:
                failed.append(f"{p['response']['url']}: HTTP {p['response']['status']}")
        return failed

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and the browser's own error log."""
        errors = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in p["args"]))
            elif e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                errors.append(d.get("exception", {}).get("description") or d["text"])
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(f"{p['entry']['text']} {p['entry'].get('url', '')}")
        return errors

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                try:
                    self.send("Browser.close")
                except CDPError:
                    pass
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        finally:
            os.close(self._to_chrome)
            self._reader.join(timeout=5)
            os.close(self._from_chrome)
            self._log.close()
            self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
