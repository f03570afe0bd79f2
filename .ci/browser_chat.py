#!/usr/bin/env python3
"""Two real browsers chat through the ws_chat example's page.

Usage:
  python3 .ci/browser_chat.py --server CMD... [--screenshot PATH]
  python3 .ci/browser_chat.py --url http://127.0.0.1:P/ [--screenshot PATH]

With --server, CMD (every word up to the next option of this script) is started in its own
process group, the port is read from its `listening on 127.0.0.1:P` line, and it is stopped at
the end. With --url a running server is used. Two headless Chromiums (two ChromeDrivers) open
the page; A sends with the button, B with Enter, B leaves; each step is awaited with a bounded
WebDriverWait. The screenshot of A (default target/ws_chat.png) shows the exchange. Prints
`ok browser chat` and exits 0, or prints what the browsers showed and exits 1.

Needs Selenium 4 (PyPI) and Debian's chromium + chromium-driver. Both paths are given to
Selenium (CHROMIUM, CHROMEDRIVER override them), so Selenium Manager never downloads anything.
"""

import argparse
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=820,720",
]
OPTIONS = ("--server", "--url", "--screenshot", "--timeout")
LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")

# Belt and braces: even if something asked Selenium Manager, it must not go online.
os.environ.setdefault("SE_OFFLINE", "true")


class Failure(Exception):
    pass


def parse_args(argv):
    # --server takes every word up to the next option of ours, so a command with options of its
    # own (`ws_chat --port 0`) needs no quoting; a single quoted word is split like a shell.
    server = None
    rest = []
    i = 0
    while i < len(argv):
        if argv[i] == "--server":
            j = i + 1
            while j < len(argv) and argv[j] not in OPTIONS:
                j += 1
            server = argv[i + 1:j]
            if len(server) == 1:
                server = shlex.split(server[0])
            i = j
        else:
            rest.append(argv[i])
            i += 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="page of an already running server")
    p.add_argument("--screenshot", default="target/ws_chat.png")
    p.add_argument("--timeout", type=float, default=20.0, help="bound of each wait, seconds")
    args = p.parse_args(rest)
    args.server = server
    if bool(args.url) == bool(server):
        p.error("give exactly one of --server CMD... or --url URL")
    return args


class Server:
    """The command under test, in its own process group; its output is kept for the report."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self._q = queue.Queue()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\r\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def port(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"no 'listening on 127.0.0.1:P' line from {self.cmd} in {timeout:g} s")
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise Failure(f"{self.cmd} exited ({self.proc.wait()}) before listening")
            m = LISTENING.match(line)
            if m:
                return int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        return self.proc.returncode


class Browser:
    def __init__(self, name, timeout):
        self.name = name
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix=f"browser-chat-{name}-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile.name}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(timeout)
        self.driver.set_script_timeout(timeout)
        self.me = None
        self.console = []

    def log(self):
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#log li'), li => li.textContent);")

    def status(self):
        return self.driver.find_element(By.ID, "status").text

    def wait(self, what, predicate):
        try:
            return WebDriverWait(self.driver, self.timeout, poll_frequency=0.1).until(
                lambda _: predicate())
        except TimeoutException:
            raise Failure(f"browser {self.name}: no {what} within {self.timeout:g} s") from None

    def wait_line(self, line):
        self.wait(f"log line {line!r}", lambda: line in self.log())

    def connect(self, url):
        self.driver.get(url)
        self.wait("status 'connected'", lambda: self.status() == "connected")
        first = self.wait("'* you are …' line", lambda: (self.log() or [None])[0])
        m = re.fullmatch(r"\* you are (guest \d+)", first)
        if not m:
            raise Failure(f"browser {self.name}: first message is {first!r}, not '* you are guest N'")
        self.me = m.group(1)
        self.wait_line(f"* {self.me} joined")
        if not self.driver.find_element(By.ID, "send").is_enabled():
            raise Failure(f"browser {self.name}: the send button is disabled while connected")

    def console_log(self):
        if self.driver is None:
            return self.console
        try:
            self.console += [f"{e.get('level')} {e.get('message')}"
                             for e in self.driver.get_log("browser")]
        except Exception as err:  # noqa: BLE001 - only for the report
            self.console.append(f"(console log unavailable: {err})")
        return self.console

    def report(self):
        print(f"--- browser {self.name} ({self.me or 'no name yet'})", file=sys.stderr)
        if self.driver is None:
            print("(closed by the test)", file=sys.stderr)
        for label, get in (("status", self.status), ("log", self.log)):
            if self.driver is None:
                break
            try:
                print(f"{label}: {get()!r}", file=sys.stderr)
            except Exception as err:  # noqa: BLE001 - the browser may be gone
                print(f"{label}: unavailable ({type(err).__name__})", file=sys.stderr)
        for line in self.console_log():
            print(f"console: {line}", file=sys.stderr)

    def quit(self):
        if self.driver is not None:
            self.console_log()
            try:
                self.driver.quit()
            finally:
                self.driver = None
                self.profile.cleanup()


def chat(url, args, browsers, server):
    token = uuid.uuid4().hex[:8]
    a = Browser("A", args.timeout)
    browsers.append(a)
    a.connect(url)
    b = Browser("B", args.timeout)
    browsers.append(b)
    b.connect(url)
    if server and (a.me, b.me) != ("guest 1", "guest 2"):
        raise Failure(f"a fresh server named the browsers {a.me!r} and {b.me!r}")
    a.wait_line(f"* {b.me} joined")

    # A: an empty message sends nothing; then text with markup, which must stay text.
    a.driver.find_element(By.ID, "send").click()
    text_a = f"hello from A <em>{token}</em> & <img src=x onerror=alert(1)>"
    box = a.driver.find_element(By.ID, "text")
    box.send_keys(text_a)
    a.driver.find_element(By.ID, "send").click()
    line_a = f"{a.me}: {text_a}"
    b.wait_line(line_a)
    a.wait_line(line_a)
    if box.get_attribute("value") != "":
        raise Failure("browser A: the input was not cleared after sending")
    for who in (a, b):
        if any(re.fullmatch(rf"{re.escape(a.me)}:\s*", line) for line in who.log()):
            raise Failure(f"browser {who.name}: the empty input was sent")
        if who.driver.execute_script("return document.querySelector('#log em, #log img') !== null"):
            raise Failure(f"browser {who.name}: message text was parsed as HTML")

    # B: Enter sends.
    text_b = f"hi A, B here ({token})"
    b.driver.find_element(By.ID, "text").send_keys(text_b + Keys.ENTER)
    line_b = f"{b.me}: {text_b}"
    a.wait_line(line_b)
    b.wait_line(line_b)

    # B leaves: A is told.
    b.quit()
    a.wait_line(f"* {b.me} left")
    a.wait("the log scrolled to its end", lambda: a.driver.execute_script(
        "const l = document.getElementById('log');"
        "return l.scrollHeight - l.scrollTop - l.clientHeight < 2;"))
    save_screenshot(a, args.screenshot)

    # Our own server goes away: the page says so and disables the button.
    if server:
        server.stop()
        a.wait("status other than 'connected' after the server stopped",
               lambda: a.status() in ("disconnected", "connecting…"))
        if a.driver.find_element(By.ID, "send").is_enabled():
            raise Failure("browser A: the send button is enabled while not connected")


def save_screenshot(browser, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not browser.driver.save_screenshot(path):
        raise Failure(f"could not save the screenshot to {path}")


def main():
    args = parse_args(sys.argv[1:])
    server = None
    browsers = []
    ok = False
    try:
        if args.server:
            server = Server(args.server)
            url = f"http://127.0.0.1:{server.port(args.timeout)}/"
        else:
            url = args.url
        chat(url, args, browsers, server)
        ok = True
    except Exception as err:  # noqa: BLE001 - any failure is reported the same way
        if not isinstance(err, (Failure, WebDriverException)):
            traceback.print_exc()
        print(f"FAIL browser chat: {err}".rstrip(), file=sys.stderr)
        for b in browsers:
            b.report()
        if browsers and browsers[0].driver is not None:
            try:
                save_screenshot(browsers[0], args.screenshot)
                print(f"screenshot of A at failure: {args.screenshot}", file=sys.stderr)
            except Exception:  # noqa: BLE001 - best effort
                pass
    finally:
        for b in browsers:
            try:
                b.quit()
            except Exception as err:  # noqa: BLE001 - quit the others all the same
                print(f"quitting browser {b.name}: {err}", file=sys.stderr)
        if server:
            code = server.stop()
            if not ok:
                print(f"--- server {server.cmd} (exit {code}):", file=sys.stderr)
                for line in server.lines:
                    print(f"server: {line}", file=sys.stderr)
    if not ok:
        return 1
    print("ok browser chat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
