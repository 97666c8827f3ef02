// upload_server/upload_page.hpp - GET /: a page that uploads a file from a
// browser, over the WebSocket protocol (websocket_session.hpp).
//
// Plain HTML and JavaScript embedded in the server: no build step, nothing
// fetched from elsewhere. The page sends {"name","size"}, waits for "ready",
// sends the file in 1 MiB binary messages (at most 8 MiB queued in the
// browser), and shows progress (bytes, %, speed, time left) and every answer
// as a sentence a person understands:
//   too_large (1009)          "This file needs 241 MiB of server memory; the
//                             server can give at most 200 MiB." No retry.
//   max_body (1009)           "This file is ...; the server accepts at most ..."
//   1013 (no_slot, no_memory, "Server busy, retrying in 3 s", counting down,
//   pressure, ...)            then a retry after the close reason's
//                             retry_after_ms (refusal.hpp); at most 5 tries
//   1001 (closed)             "Server is restarting, retrying in ..." likewise
//   done                      the server's SHA-256 and the page's, and
//                             whether they match
// The page hashes the file itself, piece by piece as it sends it, with a
// SHA-256 of its own in JavaScript: WebCrypto's digest() needs the whole file
// in one buffer, and a secure context.
//
// Element ids are a contract (the browser tests, e2e_browser.py, use them):
// input#file, button#upload, button#cancel, progress#progress (0..100),
// #status (the sentence), #sha256 (the server's hash once done),
// #local-sha256 (the page's), #figures (bytes, %, speed, time left), #detail.
#pragma once

#include <string_view>

namespace upload_server {

/// The whole document, text/html; charset=utf-8.
[[nodiscard]] std::string_view upload_page();

}  // namespace upload_server
