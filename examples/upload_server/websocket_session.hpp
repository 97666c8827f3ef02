// upload_server/websocket_session.hpp - an upload over WebSocket (GET /ws/upload).
//
// The protocol, one upload per connection:
//   client: text {"name": "...", "size": N}, at most 4096 bytes, within
//           --first-message-timeout of the upgrade (it may come in the same
//           write as the upgrade request)
//   server: text {"status":"ready","reserved_bytes":R}, or a close:
//           1009 when the upload can never fit (over --max-body, or
//           too_large for the budget), 1013 "try again later" for the
//           transient refusals, 1008 for a malformed request, no request in
//           time, or data sent before "ready" while waiting for room
//   client: binary frames, N bytes in all, ending at a message boundary
//   server: text {"status":"progress","bytes":n} every 64 MiB or so, then
//           {"status":"done","bytes":N,"sha256":"..."} and close 1000
// The data phase and how it is cut off: websocket_upload.hpp. Every refusal
// and cut-off is a close with a reason, and one log line.
// A client that vanishes frees its reservation at once (the read fails) and
// leaves no file behind; one that vanishes or closes while waiting for room
// (--wait) leaves the queue at once, through per-operation cancellation.
// Pings are allowed at any time (while waiting for room they are answered
// once the upload starts) and never count as data.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "server.hpp"

namespace upload_server {

/// Takes over a connection whose upgrade request has been read; `preread`
/// holds what was read past the request (the start of the WebSocket data);
/// `connection` counts as waiting (may be shed) until the first message is in.
[[nodiscard]] boost::asio::awaitable<void> serve_websocket(
    Server& server, boost::beast::tcp_stream stream,
    boost::beast::http::request<boost::beast::http::buffer_body> upgrade,
    boost::beast::flat_buffer preread, Connection& connection);

}  // namespace upload_server
