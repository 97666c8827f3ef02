// One HTTP connection: read a request's head within --header-timeout, route
// it, answer, and go on with the next request while the connection is kept
// alive. Uploads (http_upload.hpp) and WebSocket upgrades
// (websocket_session.hpp) take over after the head.
//
// Every request that can be answered is: a head that is too large (431, 414
// for its target), malformed (400) or late (408) gets its answer before the
// connection closes, each with one log line. Only a connection that sent
// nothing, or whose client is gone, closes without one.
#include "http_session.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <cstdio>
#include <optional>

#include "http_replies.hpp"
#include "http_upload.hpp"
#include "metrics.hpp"
#include "progress.hpp"
#include "upload_page.hpp"
#include "websocket_session.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto write_timeout = 30s;

using Request = http::request<http::buffer_body>;

void log_line(std::string_view line) {
  // One write per line, flushed, as server.cpp logs: read by people and tests as it grows.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

std::string peer_of(const beast::tcp_stream& stream) {
  beast::error_code ec;
  const auto peer = stream.socket().remote_endpoint(ec);
  return ec ? std::string{"a client"}
            : fmt::format("{}:{}", peer.address().to_string(), peer.port());
}

// Cancels the connection's pending read; the socket stays open for the answer.
void cancel_reads(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().cancel(ignored);
}

net::awaitable<void> send(beast::tcp_stream& stream, const Request& request, Reply reply) {
  http::response<http::string_body> response{reply.status, request.version()};
  response.set(http::field::server, "admit-upload-server");
  response.set(http::field::content_type, reply.content_type);
  if (reply.retry_after != 0)
    response.set(http::field::retry_after, std::to_string(reply.retry_after));
  if (!reply.allow.empty()) response.set(http::field::allow, reply.allow);
  if (!reply.rate_limit.policy.empty()) {
    response.set("RateLimit-Policy", reply.rate_limit.policy);
    response.set("RateLimit", reply.rate_limit.remaining);
  }
  if (!reply.upgrade.empty()) {
    // RFC 9110 7.8: an Upgrade field goes with an "upgrade" connection option.
    response.set(http::field::upgrade, reply.upgrade);
    response.set(http::field::connection, "Upgrade");
  }
  response.keep_alive(reply.keep_alive);
  response.body() = std::move(reply.body);
  response.prepare_payload();
  stream.expires_after(write_timeout);  // a client that does not read its answer is closed
  if (request.method() == http::verb::head) {
    // The same head, Content-Length included, without the body.
    http::response_serializer<http::string_body> head{response};
    co_await http::async_write_header(stream, head, use_tuple);
  } else {
    co_await http::async_write(stream, response,
                               use_tuple);  // a failure ends the connection anyway
  }
}

// After a refusal the client may still be sending a body we will not read.
// Closing with unread data makes the kernel send RST, which can destroy our
// answer before the client reads it; so stop sending, then read and drop
// what arrives for a bounded time and amount (nginx's "lingering close").
net::awaitable<void> lingering_close(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  stream.expires_after(2s);
  std::array<char, 16 * 1024> discard;
  std::uint64_t drained = 0;
  while (drained < 64 * 1024 * 1024) {
    auto [ec, n] = co_await stream.async_read_some(net::buffer(discard), use_tuple);
    if (ec) break;
    drained += n;
  }
  stream.close();
}

net::awaitable<void> answer_and_close(beast::tcp_stream& stream, const Request& request,
                                      Reply reply) {
  reply.keep_alive = false;
  co_await send(stream, request, std::move(reply));
  co_await lingering_close(stream);
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// A head over max_head_bytes: 414 if its target is what is too long, else 431.
// Beast consumes the request line once it parsed it: if it did, the target is
// in the message; if not, the request line alone filled the limit.
Reply head_too_large_reply(const UploadParser& parser) {
  const std::string_view target = parser.get().target();
  return target.empty() || target.size() > max_target_length ? target_too_long() : head_too_large();
}

// What to answer a request whose head could not be read (ec), or nothing.
std::optional<Reply> head_error_reply(beast::error_code ec, const UploadParser& parser) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return head_too_large_reply(parser);
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
    return bad_request("malformed request: " + ec.message());
  }
  return std::nullopt;  // reset, or the client closed: nobody to answer
}

Reply text_reply(std::string body, std::string_view content_type, bool keep_alive) {
  Reply reply;
  reply.body = std::move(body);
  reply.content_type = content_type;
  reply.keep_alive = keep_alive;
  return reply;
}

bool get_or_head(const Request& request) {
  return request.method() == http::verb::get || request.method() == http::verb::head;
}

// The answer to a request that is not an upload or an upgrade.
Reply route(Server& server, const Request& request, std::string_view path, bool has_body) {
  if (path == "/") {
    if (!get_or_head(request)) return method_not_allowed("GET, HEAD");
    return text_reply(std::string{upload_page()}, "text/html; charset=utf-8", !has_body);
  }
  if (path == "/ws/upload") {
    return get_or_head(request) ? upgrade_required() : method_not_allowed("GET");
  }
  if (path == "/api/v1/upload") return method_not_allowed("POST");
  if (path == "/metrics" || path == "/healthz" || path == "/debug/uploads") {
    if (!get_or_head(request)) return method_not_allowed("GET, HEAD");
    if (path == "/healthz") {
      return health_reply(server.pool.under_pressure(), !has_body, server.retry.after_pressure());
    }
    if (path == "/debug/uploads") {
      return text_reply(server.live_uploads.json(), "application/json", !has_body);
    }
    return text_reply(metrics_text(server), "text/plain; version=0.0.4", !has_body);
  }
  return not_found();
}

}  // namespace

net::awaitable<void> serve_http(Server& server, net::ip::tcp::socket socket,
                                Connection connection) {
  beast::tcp_stream stream{std::move(socket)};
  beast::flat_buffer buffer{max_head_bytes};  // its maximum size: a head never grows it further
  for (bool first_request = true;; first_request = false) {
    UploadParser parser;
    parser.header_limit(max_head_bytes);
    parser.body_limit(boost::none);  // --max-body is checked against the declared size instead

    // The whole head within --header-timeout, between requests as well. A
    // watch that is never told of data is a plain deadline; unlike the
    // stream's own timeout it leaves the socket open for a 408.
    stream.expires_never();
    beast::error_code ec;
    bool late = false;
    {
      ProgressWatch deadline{stream.get_executor(),
                             {.body_timeout = server.options.header_timeout},
                             [&stream](std::string) { cancel_reads(stream); }};
      auto [read_ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
      ec = read_ec;
      late = deadline.late();
    }
    if (ec && late) {
      if (buffer.size() > 0 || parser.got_some()) {
        Reply reply = late_head_reply(server.options.header_timeout);
        log_line(fmt::format("http: {} sent no complete request head within {} ms; answered 408\n",
                             peer_of(stream), server.options.header_timeout.count()));
        co_await answer_and_close(stream, Request{}, std::move(reply));
      } else if (first_request) {
        // Nothing to answer: no request was begun. (An idle kept-alive
        // connection closes quietly, as every server's do.)
        log_line(fmt::format("http: {} sent nothing within {} ms; closed\n", peer_of(stream),
                             server.options.header_timeout.count()));
      }
      co_return;
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof) co_return;
    if (ec) {
      if (std::optional<Reply> reply = head_error_reply(ec, parser)) {
        log_line(fmt::format("http: {} sent a bad request head ({}); answered {}\n",
                             peer_of(stream), ec.message(), static_cast<unsigned>(reply->status)));
        co_await answer_and_close(stream, Request{}, std::move(*reply));
      }
      co_return;
    }
    const Request& request = parser.get();
    const std::string_view path = path_of(request.target());
    const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
    const bool target_fits = request.target().size() <= max_target_length;

    if (target_fits && path == "/ws/upload" && beast::websocket::is_upgrade(request)) {
      co_await serve_websocket(server, std::move(stream), parser.release(), std::move(buffer),
                               connection);
      co_return;
    }
    // A complete request: not shed from here until the loop comes round again
    // (a WebSocket is busy only once its first message is in).
    const Connection::Busy in_request = connection.busy();

    Reply reply;
    bool body_left = !parser.is_done();
    if (!target_fits) {
      log_line(fmt::format("http: {} sent a {}-byte target; answered 414\n", peer_of(stream),
                           request.target().size()));
      reply = target_too_long();
    } else if (path == "/api/v1/upload" && request.method() == http::verb::post) {
      std::optional<Reply> answer = co_await serve_upload(server, stream, buffer, parser);
      if (!answer) co_return;
      reply = std::move(*answer);
      body_left = false;  // read past the parser; the reply says whether it was all read
    } else {
      reply = route(server, request, path, has_body);
    }

    // A body left unread means we cannot find the next request: close.
    reply.keep_alive = reply.keep_alive && request.keep_alive() && !body_left;
    const bool keep_alive = reply.keep_alive;
    co_await send(stream, request, std::move(reply));
    if (!keep_alive) {
      co_await lingering_close(stream);
      co_return;
    }
  }
}

}  // namespace upload_server
