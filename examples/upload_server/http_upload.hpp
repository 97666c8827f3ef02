// http_upload.hpp - POST /api/v1/upload: admitted after its head, then its
// body streamed to disk under a data deadline.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <optional>

#include "http_replies.hpp"
#include "server.hpp"

namespace upload_server {

using UploadParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

/// Serves the upload whose head `parser` has read from `stream` (`buffer`
/// holds what was read past the head). Returns the answer for the caller to
/// send, or nullopt when the client vanished and there is nobody to answer.
/// Whatever the outcome, the upload's reservation and any partial file are
/// gone when this returns, and one log line says how it ended. The body is
/// read past `parser` (which is left with the head only, never is_done() for
/// a body): the answer keeps the connection alive only if the whole body was
/// read, and `buffer` then holds what the client sent after it.
[[nodiscard]] boost::asio::awaitable<std::optional<Reply>> serve_upload(
    Server& server, boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
    UploadParser& parser);

}  // namespace upload_server
