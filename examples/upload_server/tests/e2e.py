#!/usr/bin/python3
"""End-to-end tests of admit_upload_server, driven by curl and Python's websockets.

    /usr/bin/python3 e2e.py --server PATH --work-dir DIR --case NAME [--server-args "..."]
    /usr/bin/python3 e2e.py --list

One case per invocation: it starts its own server (stdout and stderr in
DIR/server.log, files in DIR/store), runs, and stops the server (SIGTERM, then
SIGKILL) even when it fails. Exit 0 on pass, 77 (CTest's skip) when the case
cannot run on this machine; otherwise 1 with what was expected,
what was seen, and the last 30 lines of the server's log. Every wait is bounded;
a case gives up after its own time limit (90 s; memory_ceiling 100 s, large_ws_upload 540 s).

This file holds the command line and the case registry. The cases live by concept
in e2e_websocket.py, e2e_http.py, e2e_admission.py, e2e_lifecycle.py, e2e_memory.py
(--budget auto, --follow-memory), e2e_ceiling.py (--buffer memory under RLIMIT_AS),
e2e_debug.py (GET /debug/uploads, SIGUSR1), e2e_tenants.py (--partition,
--bypass-token), e2e_browser.py (the upload page in headless
Chromium) and, for hostile clients, e2e_hostile_http.py,
e2e_hostile_storage.py, e2e_hostile_ws.py, e2e_hostile_ws_request.py (WebSocket
clients after and before "ready") and e2e_hostile_connections.py; what they share
in e2e_context.py and the support modules it names (e2e_support.py, e2e_server.py,
e2e_clients.py, e2e_metrics.py).

Needs Debian's /usr/bin/python3 with python3-websockets (10.4, asyncio API) and curl;
the browser cases also chromium, chromium-driver and python3-selenium (else they skip).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Awaitable, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_admission  # noqa: E402
import e2e_browser  # noqa: E402
import e2e_ceiling  # noqa: E402
import e2e_debug  # noqa: E402
import e2e_hostile_http  # noqa: E402
import e2e_hostile_storage  # noqa: E402
import e2e_hostile_ws  # noqa: E402
import e2e_hostile_ws_request  # noqa: E402
import e2e_hostile_connections  # noqa: E402
import e2e_http  # noqa: E402
import e2e_lifecycle  # noqa: E402
import e2e_memory  # noqa: E402
import e2e_websocket  # noqa: E402
import e2e_tenants  # noqa: E402
from e2e_context import Ctx  # noqa: E402
from e2e_server import describe_exit  # noqa: E402
from e2e_support import SKIP_CODE, CaseFailure, CaseSkipped  # noqa: E402

# --- The case registry: name -> (case, time limit in s), in --list order ------------------

Case = Callable[[Ctx], Awaitable[None]]
LIMIT = 90.0

CASES: dict[str, tuple[Case, float]] = {
    "large_ws_upload": (e2e_websocket.large_ws_upload, 540.0),
    "large_ws_flat10": (e2e_websocket.large_ws_flat10, LIMIT),
    "curl_multipart": (e2e_http.curl_multipart, LIMIT),
    "curl_raw": (e2e_http.curl_raw, LIMIT),
    "curl_too_large": (e2e_http.curl_too_large, LIMIT),
    "overload": (e2e_admission.overload, LIMIT),
    "wait_for_room": (e2e_admission.wait_for_room, LIMIT),
    "wait_lanes": (e2e_admission.wait_lanes, LIMIT),
    "wait_timeout": (e2e_admission.wait_timeout, LIMIT),
    "wait_abandoned": (e2e_admission.wait_abandoned, LIMIT),
    "retry_after_pace": (e2e_admission.retry_after_pace, LIMIT),
    "partitions": (e2e_tenants.partitions, LIMIT),
    "bypass": (e2e_tenants.bypass, LIMIT),
    "partition_wait": (e2e_tenants.partition_wait, LIMIT),
    "abort_200": (e2e_lifecycle.abort_200, LIMIT),
    "ws_oversend": (e2e_websocket.ws_oversend, LIMIT),
    "ws_errors": (e2e_websocket.ws_errors, LIMIT),
    "http_errors": (e2e_http.http_errors, LIMIT),
    "graceful_shutdown": (e2e_lifecycle.graceful_shutdown, LIMIT),
    "shutdown_grace_expired": (e2e_lifecycle.shutdown_grace_expired, LIMIT),
    "memory_follow": (e2e_memory.memory_follow, LIMIT),
    "memory_auto_refused": (e2e_memory.memory_auto_refused, LIMIT),
    "memory_ceiling": (e2e_ceiling.memory_ceiling, 100.0),
    "debug_uploads": (e2e_debug.debug_uploads_listed, LIMIT),
    "debug_sigusr1": (e2e_debug.debug_sigusr1, LIMIT),
    "http_slow_client": (e2e_hostile_http.http_slow_client, 30.0),
    "http_idle_body": (e2e_hostile_http.http_idle_body, 30.0),
    "http_min_rate": (e2e_hostile_http.http_min_rate, 30.0),
    "http_header_timeout": (e2e_hostile_http.http_header_timeout, 30.0),
    "http_two_files": (e2e_hostile_http.http_two_files, LIMIT),
    "http_decoded_names": (e2e_hostile_http.http_decoded_names, LIMIT),
    "http_status_codes": (e2e_hostile_http.http_status_codes, LIMIT),
    "http_body_limit": (e2e_hostile_http.http_body_limit, LIMIT),
    "http_body_framing": (e2e_hostile_http.http_body_framing, LIMIT),
    "crash_no_partial": (e2e_hostile_storage.crash_no_partial, LIMIT),
    "crash_partial_swept": (e2e_hostile_storage.crash_partial_swept, LIMIT),
    "same_name_1005": (e2e_hostile_storage.same_name_1005, LIMIT),
    "disk_full_http": (e2e_hostile_storage.disk_full_http, LIMIT),
    "disk_full_ws": (e2e_hostile_storage.disk_full_ws, LIMIT),
    "hostile_ws_idle": (e2e_hostile_ws.hostile_ws_idle, LIMIT),
    "hostile_ws_min_rate": (e2e_hostile_ws.hostile_ws_min_rate, LIMIT),
    "hostile_ws_max_body": (e2e_hostile_ws_request.hostile_ws_max_body, LIMIT),
    "hostile_ws_first_message": (e2e_hostile_ws_request.hostile_ws_first_message, LIMIT),
    "hostile_ws_split_oversend": (e2e_hostile_ws.hostile_ws_split_oversend, LIMIT),
    "hostile_ws_pre_ready": (e2e_hostile_ws_request.hostile_ws_pre_ready, LIMIT),
    "hostile_ws_upgrade_leftover": (e2e_hostile_ws_request.hostile_ws_upgrade_leftover, LIMIT),
    "hostile_ws_close_unanswered": (e2e_hostile_ws.hostile_ws_close_unanswered, LIMIT),
    "hostile_ws_shutdown_told": (e2e_hostile_ws.hostile_ws_shutdown_told, LIMIT),
    "conn_flood": (e2e_hostile_connections.conn_flood, LIMIT),
    "conn_flood_over_cap": (e2e_hostile_connections.conn_flood_over_cap, LIMIT),
    "conn_max": (e2e_hostile_connections.conn_max, LIMIT),
    "conn_per_ip": (e2e_hostile_connections.conn_per_ip, LIMIT),
    "browser_upload": (e2e_browser.browser_upload, LIMIT),
    "browser_busy_retry": (e2e_browser.browser_busy_retry, LIMIT),
    "browser_too_large": (e2e_browser.browser_too_large, LIMIT),
    "browser_cancel": (e2e_browser.browser_cancel, LIMIT),
}


# --- Main ---------------------------------------------------------------------------------

class HardTimeout(BaseException):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="path to admit_upload_server")
    parser.add_argument("--work-dir", help="scratch directory (server.log, store/, files)")
    parser.add_argument("--case", choices=sorted(CASES), metavar="NAME", help="the case to run")
    parser.add_argument("--server-args", default="",
                        help="extra server flags, appended (e.g. \"--admission off\")")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not (args.server and args.work_dir and args.case):
        parser.error("--server, --work-dir and --case are required (or --list)")
    binary = os.path.abspath(args.server)
    if not os.access(binary, os.X_OK):
        print(f"FAIL {args.case}: {binary} is not an executable", flush=True)
        return 2
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)

    fn, limit = CASES[args.case]
    ctx = Ctx(binary, work_dir, shlex.split(args.server_args))

    def on_alarm(signum, frame):
        raise HardTimeout()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(limit) + 15)  # a backstop, should asyncio's own bound not fire

    async def run() -> None:
        try:
            await asyncio.wait_for(fn(ctx), limit)
        except asyncio.TimeoutError:
            raise CaseFailure(f"the case did not finish within its limit of {limit:g} s") from None
        finally:
            await ctx.dispose_clients()

    started = time.monotonic()
    failure: Optional[str] = None
    skipped: Optional[str] = None
    try:
        asyncio.run(run())
        # Every case ends with the server idle: SIGTERM must make it exit 0, promptly.
        for server in ctx.servers:
            if server.alive():
                code = server.stop(timeout=30)
                if code is None:
                    failure = "the server did not exit within 30 s of SIGTERM at the end of the case"
                elif code != 0:
                    failure = f"the server exited with {describe_exit(code)} on SIGTERM (expected 0)"
            elif server.proc is not None and server.proc.poll() not in (0, None):
                failure = f"the server exited with {describe_exit(server.proc.poll())}"
    except CaseSkipped as e:
        skipped = str(e)
    except CaseFailure as e:
        failure = str(e)
    except HardTimeout:
        failure = f"the case was stopped by its backstop alarm after {int(limit) + 15} s"
    except Exception:
        failure = "unexpected error:\n" + traceback.format_exc()
    finally:
        signal.alarm(0)
        for server in ctx.servers:
            if server.alive():
                server.stop(timeout=10)
    took = time.monotonic() - started
    if skipped is not None and failure is None:
        print(f"SKIP {args.case} ({took:.1f} s): {skipped}", flush=True)
        return SKIP_CODE
    if failure is None:
        print(f"PASS {args.case} ({took:.1f} s)", flush=True)
        return 0
    print(f"FAIL {args.case} ({took:.1f} s): {failure}", flush=True)
    for server in ctx.servers:
        print(f"--- {server.command_line()}", flush=True)
        print(f"--- exit: {describe_exit(server.exit_code)}"
              + (" (killed with SIGKILL after SIGTERM)" if server.killed else ""), flush=True)
        print(f"--- last 30 lines of {server.log_path}:", flush=True)
        print(server.log_tail(30), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
