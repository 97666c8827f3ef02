// upload_server/websocket_session.hpp - an upload over WebSocket (GET /ws/upload).
//
// The protocol, one upload per connection:
//   client: text {"name": "...", "size": N}
//   server: text {"status":"ready","reserved_bytes":R}, or a close:
//           1009 when the upload can never fit (too_large), 1013 "try again
//           later" for the transient refusals, 1008 for a malformed request
//   client: binary frames, N bytes in all
//   server: text {"status":"progress","bytes":n} every 64 MiB or so, then
//           {"status":"done","bytes":N,"sha256":"..."} and close 1000
// Sending more than N bytes closes with 1009 as soon as a read crosses N. (A
// read that ends exactly at N completes the upload: "done" and close 1000 go
// out, and whatever the client sends after that is dropped by the closing
// handshake, never stored.)
// A client that vanishes frees its reservation at once (the read fails) and
// leaves no file behind; one that vanishes while waiting for room (--wait)
// leaves the queue at once, through per-operation cancellation.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "server.hpp"

namespace upload_server {

/// Takes over a connection whose upgrade request has been read; `connection`
/// counts as waiting (may be shed) until the first message is in.
[[nodiscard]] boost::asio::awaitable<void> serve_websocket(
    Server& server, boost::beast::tcp_stream stream,
    boost::beast::http::request<boost::beast::http::buffer_body> upgrade, Connection& connection);

}  // namespace upload_server
