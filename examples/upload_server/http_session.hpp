// upload_server/http_session.hpp - one HTTP connection: uploads, metrics,
// health, and the hand-over of WebSocket upgrades.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "server.hpp"

namespace upload_server {

/// Serves requests on `socket` until the client or an error ends the
/// connection; `connection` is its place in the server's connection registry
/// (waiting until a request's headers are in, again between requests).
/// Routes:
///   POST /api/v1/upload   multipart/form-data or a raw body (?name=...), http_upload.hpp
///   GET  /ws/upload       WebSocket upgrade (websocket_session.hpp); without one, 426
///   GET  /metrics         the pool's and the connections' figures, Prometheus text format
///                         (HEAD too)
///   GET  /healthz         "ok" (HEAD too)
///   GET  /                the upload page (upload_page.hpp; HEAD too)
/// Other methods get 405 with Allow, other paths 404; the answers are in
/// http_replies.hpp. Each request's head must arrive within --header-timeout.
[[nodiscard]] boost::asio::awaitable<void> serve_http(Server& server,
                                                      boost::asio::ip::tcp::socket socket,
                                                      Connection connection);

}  // namespace upload_server
