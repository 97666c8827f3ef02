"""Cases in a real browser: the upload page (GET /, upload_page.hpp) in headless
Chromium, driven through chromedriver by Debian's python3-selenium. Each case
uploads through the page as a person would (choose a file, click Upload), reads
the page's sentence (#status), bar (#progress) and hashes (#sha256,
#local-sha256), checks the server's side (/metrics, the store), and saves a
screenshot of its final state in its --work-dir.

Skipped (77) when chromium, chromedriver or selenium is missing. Chromium runs with
--headless=new, and --no-sandbox as root (its sandbox refuses to run as root). Every
wait is bounded; the browser and chromedriver are stopped by pid at the end
(driver.quit(), then SIGKILL to whatever of them is left)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Callable

from e2e_context import Ctx, finish, hold
from e2e_server import _die_with_parent
from e2e_support import MiB, CaseFailure, CaseSkipped, check, log, payload, within

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# What the page shows, read in one script call.
STATE_SCRIPT = """
const $ = (id) => document.getElementById(id);
return {status: $("status").textContent, detail: $("detail").textContent,
        figures: $("figures").textContent, progress: Number($("progress").value),
        sha256: $("sha256").textContent, local: $("local-sha256").textContent,
        upload_enabled: !$("upload").disabled, cancel_enabled: !$("cancel").disabled};
"""


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`, from /proc (children before their parents' end)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Browser:
    """One headless Chromium behind one chromedriver. Blocking: call through run()."""

    def __init__(self, work_dir: Path):
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not os.access(path, os.X_OK):
                raise CaseSkipped(f"{path} is missing (Debian: {package})")
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.options import Options
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            raise CaseSkipped("selenium is missing in /usr/bin/python3 (Debian: "
                              "python3-selenium)") from None
        self.work_dir = work_dir
        options = Options()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--window-size=900,720",
                         "--disable-background-networking", "--disable-component-update",
                         f"--user-data-dir={work_dir / 'chromium-profile'}"):
            options.add_argument(argument)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium's sandbox refuses root
        # An explicit driver: selenium then never looks for one on the network.
        # PDEATHSIG: a harness killed outright takes chromedriver with it.
        self.service = Service(executable_path=CHROMEDRIVER,
                               log_path=str(work_dir / "chromedriver.log"),
                               popen_kw={"preexec_fn": _die_with_parent})
        self.driver: Any = None
        try:
            self.driver = webdriver.Chrome(service=self.service, options=options)
        except Exception as e:
            self.close()
            raise CaseFailure(f"cannot start headless Chromium through chromedriver: {e}") from None
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(20)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def choose(self, path: Path) -> None:
        from selenium.webdriver.common.by import By
        self.driver.find_element(By.ID, "file").send_keys(str(path))

    def click(self, element_id: str) -> None:
        from selenium.webdriver.common.by import By
        self.driver.find_element(By.ID, element_id).click()

    def state(self) -> dict:
        return self.driver.execute_script(STATE_SCRIPT)

    def screenshot(self, name: str) -> Path:
        path = self.work_dir / name
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        """driver.quit(), then SIGKILL by pid to chromedriver and anything it left."""
        process = getattr(self.service, "process", None)
        pids = [process.pid, *_descendants(process.pid)] if process is not None else []
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception as e:  # the kill below still ends it
                log(f"driver.quit() failed: {e}")
            self.driver = None
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                log(f"browser process {pid} still running after quit(): SIGKILL")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if process is not None:
            try:
                process.wait(5)
            except Exception:
                pass


async def run(what: str, fn: Callable, *args, timeout: float = 30.0):
    """A blocking browser call in a thread, so that the case's other clients go on."""
    return await within(asyncio.to_thread(fn, *args), timeout, what)


async def start_browser(ctx: Ctx) -> Browser:
    browser = await run("headless Chromium to start", Browser, ctx.work_dir, timeout=60)
    ctx.cleanups.append(lambda: browser.close())
    await run("the upload page to load", browser.open, ctx.url("/"))
    return browser


async def wait_page(browser: Browser, predicate: Callable[[dict], bool], what: str,
                    timeout: float) -> dict:
    """Polls the page until `predicate(state)`; fails naming `what` and the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = await run("the page's state", browser.state)
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            path = await run("a screenshot", browser.screenshot, "failed.png")
            raise CaseFailure(f"the page did not show {what} within {timeout:g} s; it shows "
                              f"{state} (screenshot {path})")
        await asyncio.sleep(0.1)


async def upload(ctx: Ctx, browser: Browser, path: Path) -> None:
    await run("choosing the file", browser.choose, path)
    await run("clicking Upload", browser.click, "upload")


async def final_screenshot(ctx: Ctx, browser: Browser, name: str) -> None:
    path = await run("a screenshot", browser.screenshot, name)
    log(f"screenshot: {path}")


def expect_done(state: dict, data_sha256: str) -> None:
    check(state["sha256"] == data_sha256 and state["local"] == data_sha256,
          f"expected the server's and the page's SHA-256 to be {data_sha256}, the page shows "
          f"{state}")
    check(state["progress"] == 100 and "matches" in state["status"],
          f"expected the bar at 100 and a sentence saying the hashes match, got {state}")


# --- The cases -------------------------------------------------------------------------

async def browser_upload(ctx: Ctx) -> None:
    """A 64 MiB file through the page: progress to 100 %, "Done" with the server's
    SHA-256 equal to the page's and to Python's, the file stored byte-identical."""
    ctx.start_server("--budget", "200MiB")
    data = payload(64 * MiB, seed=1401)
    path = ctx.write_file("page-64MiB.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    browser = await start_browser(ctx)
    started = time.monotonic()
    await upload(ctx, browser, path)
    state = await wait_page(browser, lambda s: "Done" in s["status"] or "failed" in s["status"],
                            "Done", timeout=120)
    took = time.monotonic() - started
    await final_screenshot(ctx, browser, "browser_upload.png")
    log(f"page after {took:.1f} s: {state}")
    expect_done(state, sha)
    ctx.expect_stored({"name": path.name, "bytes": len(data), "sha256": sha}, data, path.name)
    m = await ctx.wait_idle()
    check(m["admit_admitted_total"] == 1, f"expected one upload admitted, got {m.summary()}")


async def browser_busy_retry(ctx: Ctx) -> None:
    """--slots 2, both held by test clients: the page says "Server busy, retrying in N s"
    and counts down; once a slot is released it retries on its own and completes."""
    ctx.start_server("--budget", "200MiB", "--slots", "2")
    held = [payload(MiB, seed=1410 + i) for i in range(2)]
    holders = [await hold(ctx, f"held-{i}.bin", len(data)) for i, data in enumerate(held)]
    data = payload(4 * MiB + 3, seed=1412)
    path = ctx.write_file("page-busy.bin", data)
    browser = await start_browser(ctx)
    await upload(ctx, browser, path)

    busy = re.compile(r"Server busy, retrying in (\d+) s")
    state = await wait_page(browser, lambda s: busy.search(s["status"]) is not None,
                            "Server busy, retrying in N s", timeout=20)
    first = int(busy.search(state["status"]).group(1))
    log(f"page: {state['status']!r} / {state['detail']!r}")
    # No upload has ended yet: the server's no-rate hint, 3 s +-20 %, rounded up.
    check(first in (3, 4), f"expected the countdown to start at 3 or 4 s, got {state}")
    state = await wait_page(
        browser, lambda s: (m := busy.search(s["status"])) is not None and int(m.group(1)) < first,
        "the countdown going down", timeout=3)
    await final_screenshot(ctx, browser, "browser_busy_countdown.png")
    log(f"page: {state['status']!r}")

    await finish(holders[0], held[0])  # a slot comes back while the page waits
    state = await wait_page(browser, lambda s: "Done" in s["status"] or "gave up" in s["status"],
                            "Done after the retry", timeout=30)
    await final_screenshot(ctx, browser, "browser_busy_retry.png")
    log(f"page: {state}")
    expect_done(state, hashlib.sha256(data).hexdigest())
    check(re.search(r"on try [2-5] of 5\.$", state["detail"]) is not None,
          f"expected the page to say it took more than one try, got {state}")
    await finish(holders[1], held[1])
    m = await ctx.wait_idle()
    check(m.rejected("no_slot") >= 1 and m["admit_admitted_total"] == 3,
          f"expected the page refused no_slot, then admitted (3 in all), got {m.summary()}")
    await ctx.wait_store(["held-0.bin", "held-1.bin", path.name])


async def browser_too_large(ctx: Ctx) -> None:
    """The 2,530,644,380-byte file under flat 10 % and a 200 MiB budget: the page says
    "This file needs 241 MiB of server memory; the server can give at most 200 MiB"
    and never asks again."""
    ctx.start_server("--budget", "200MiB", "--policy", "flat:10")
    path = ctx.work_dir / "files" / "page-too-large.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # sparse: the page sends only its size
        f.truncate(2_530_644_380)
    browser = await start_browser(ctx)
    await upload(ctx, browser, path)
    sentence = ("This file needs 241 MiB of server memory; the server can give at most "
                "200 MiB.")
    state = await wait_page(browser, lambda s: sentence in s["status"], repr(sentence), timeout=20)
    log(f"page: {state['status']!r} / {state['detail']!r}")
    await asyncio.sleep(5)  # longer than any retry's countdown would start
    state = await run("the page's state", browser.state)
    await final_screenshot(ctx, browser, "browser_too_large.png")
    check(sentence in state["status"] and state["upload_enabled"] and not state["cancel_enabled"],
          f"expected the sentence to stay, Upload enabled again and Cancel not, got {state}")
    m = await ctx.wait_idle()
    check(m.rejected("too_large") == 1 and m["admit_admitted_total"] == 0,
          f"expected exactly one too_large refusal (no retry) and nothing admitted, got "
          f"{m.summary()}")
    asked = ctx.server.log_path.read_text(errors="replace").count("outcome=too_large")
    check(asked == 1, f"expected the page to ask once, the log has {asked} too_large refusals")
    await ctx.wait_store([])


async def browser_cancel(ctx: Ctx) -> None:
    """Cancel mid-upload (a 1 GiB file, sparse): the page says so, and /metrics shows 0
    bytes, 0 slots and 0 waiters, and the store holds nothing, not even a .part."""
    ctx.start_server("--budget", "200MiB")
    path = ctx.work_dir / "files" / "page-cancel.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(1024 * MiB)
    browser = await start_browser(ctx)
    await upload(ctx, browser, path)
    state = await wait_page(browser, lambda s: 2 <= s["progress"] < 90,
                            "the upload under way (progress 2..89 %)", timeout=60)
    m = await ctx.metrics()
    check(m["admit_slots_in_use"] == 1, f"expected the page's upload to hold a slot, got "
                                        f"{m.summary()}")
    log(f"page before Cancel: {state['figures']!r}")
    await run("clicking Cancel", browser.click, "cancel")
    state = await wait_page(browser, lambda s: "Cancelled" in s["status"], "Cancelled", timeout=10)
    m = await ctx.wait_idle()
    await ctx.wait_store([])
    await final_screenshot(ctx, browser, "browser_cancel.png")
    check(state["upload_enabled"] and not state["cancel_enabled"] and state["progress"] == 0,
          f"expected Upload enabled again, Cancel not, the bar at 0, got {state}")
    check(m.rejected("too_large") == 0 and m["admit_admitted_total"] == 1,
          f"expected one upload admitted, got {m.summary()}")
    log(f"after Cancel: {m.summary()}")
