// An upload is admitted after its headers and before its body: the declared
// size is the Content-Length, and a client that sent "Expect: 100-continue"
// (curl does above 1 MiB) gets its 100 only once admitted, so a refused
// client never sends its body. The body then streams through one fixed
// buffer into the storage directory, so memory does not grow with the size.
#include "http_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <vector>

#include "metrics.hpp"
#include "multipart.hpp"
#include "refusal.hpp"
#include "storage.hpp"
#include "websocket_session.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t header_limit = 16 * 1024;
constexpr std::size_t body_chunk_size = 64 * 1024;
constexpr auto idle_timeout = 30s;

using Request = http::request<http::buffer_body>;

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string_view content_type = "application/json";
  unsigned retry_after = 0;
  bool keep_alive = false;
};

Reply json_reply(http::status status, const nlohmann::json& body, bool keep_alive = false) {
  return {status, body.dump() + "\n", "application/json", 0, keep_alive};
}

Reply error_reply(http::status status, std::string_view error, std::string_view detail) {
  return json_reply(status, {{"error", error}, {"message", detail}});
}

Reply refusal_reply(const admit::Rejection& rejection) {
  HttpRefusal refusal = http_refusal(rejection);
  Reply reply{static_cast<http::status>(refusal.status), std::move(refusal.body)};
  reply.retry_after = refusal.retry_after;
  return reply;
}

net::awaitable<void> send(beast::tcp_stream& stream, const Request& request, Reply reply) {
  http::response<http::string_body> response{reply.status, request.version()};
  response.set(http::field::server, "admit-upload-server");
  response.set(http::field::content_type, reply.content_type);
  if (reply.retry_after != 0)
    response.set(http::field::retry_after, std::to_string(reply.retry_after));
  response.keep_alive(reply.keep_alive);
  response.body() = std::move(reply.body);
  response.prepare_payload();
  stream.expires_after(idle_timeout);
  co_await http::async_write(stream, response,
                             use_tuple);  // a failed write ends the connection anyway
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

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// The value of `key` in the target's query string, undecoded ("" if absent).
std::string_view query_param(std::string_view target, std::string_view key) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return {};
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key && eq != std::string_view::npos) return pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// Where the body goes: a raw body straight into the file; a multipart body
// through the streaming parser, whose first part with a filename is the file
// (other fields are read and ignored).
class BodyWriter final : private MultipartSink {
 public:
  BodyWriter(const std::filesystem::path& dir, std::optional<std::string> boundary,
             std::string raw_name)
      : dir_{dir} {
    if (boundary) {
      parser_.emplace(std::move(*boundary));
    } else {
      open(raw_name);
    }
  }

  // False once something went wrong; error() then says what.
  bool write(std::string_view data) {
    if (!error_.empty()) return false;
    if (!parser_) {
      write_file(data);
    } else if (parser_->feed(data, *this) == MultipartParser::Status::error) {
      error_ = "malformed multipart body: " + std::string{parser_->error()};
    }
    return error_.empty();
  }

  // Called once the whole body has arrived.
  bool finish() {
    if (!error_.empty()) return false;
    if (parser_ && parser_->finish() != MultipartParser::Status::done) {
      error_ = "malformed multipart body: " + std::string{parser_->error()};
    } else if (!file_) {
      error_ = "the multipart body has no part with a filename";
    }
    return error_.empty();
  }

  std::error_code commit(Stored& stored) { return file_->commit(stored); }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] bool storage_failed() const noexcept { return storage_failed_; }

 private:
  void open(std::string_view client_name) {
    file_.emplace();
    if (const std::error_code ec = file_->open(dir_, sanitize_file_name(client_name))) {
      storage_failed_ = true;
      error_ = "cannot create the file: " + ec.message();
    }
  }

  void write_file(std::string_view data) {
    if (const std::error_code ec = file_->write(data)) {
      storage_failed_ = true;
      error_ = "cannot write the file: " + ec.message();
    }
  }

  void on_part_begin(const PartHeaders& headers) override {
    in_file_part_ = !file_ && !headers.filename.empty();
    if (in_file_part_) open(headers.filename);
  }
  void on_part_data(std::string_view data) override {
    if (in_file_part_ && error_.empty()) write_file(data);
  }
  void on_part_end() override { in_file_part_ = false; }

  const std::filesystem::path& dir_;
  std::optional<MultipartParser> parser_;
  std::optional<UploadFile> file_;
  bool in_file_part_ = false;
  bool storage_failed_ = false;
  std::string error_;
};

// POST /api/v1/upload. Returns the answer for the caller to send, or nothing
// when the client vanished mid-upload.
net::awaitable<std::optional<Reply>> upload(Server& server, beast::tcp_stream& stream,
                                            beast::flat_buffer& buffer,
                                            http::request_parser<http::buffer_body>& parser) {
  const Request& request = parser.get();
  const UploadId id{"http", server.next_upload_id++};

  if (!parser.content_length()) {  // chunked, or no length at all
    co_return error_reply(
        http::status::length_required, "length_required",
        "an upload needs a Content-Length: it is the size admission is asked for");
  }
  const std::uint64_t declared = *parser.content_length();
  if (declared > server.options.max_body) {
    co_return json_reply(http::status::payload_too_large, {{"reason", "max_body"},
                                                           {"declared_size", declared},
                                                           {"max_body", server.options.max_body}});
  }
  std::optional<std::string> boundary;
  const std::string_view content_type = request[http::field::content_type];
  if (beast::iequals(content_type.substr(0, content_type.find(';')), "multipart/form-data")) {
    boundary = boundary_from_content_type(content_type);
    if (!boundary) {
      co_return error_reply(http::status::bad_request, "bad_request",
                            "multipart/form-data without a usable boundary");
    }
  }

  admit::Admission admission = co_await admit_upload(server, id, declared);
  if (!admission) co_return refusal_reply(admission.error());  // 413, or 503 + Retry-After
  const RunningUpload running{server};
  if (beast::iequals(request[http::field::expect], "100-continue")) {
    http::response<http::empty_body> go_on{http::status::continue_, request.version()};
    stream.expires_after(idle_timeout);
    if (auto [ec, n] = co_await http::async_write(stream, go_on, use_tuple); ec) {
      log_upload_end(server, id, 0, "client gone: " + ec.message());
      co_return std::nullopt;
    }
  }

  std::string raw_name{query_param(request.target(), "name")};
  BodyWriter body{server.options.dir, std::move(boundary),
                  raw_name.empty() ? "upload.bin" : raw_name};
  std::vector<char> chunk(body_chunk_size);  // the only buffer, whatever the size
  std::uint64_t received = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    stream.expires_after(idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec && ec != http::error::need_buffer) {
      // The client is gone or stalled: nobody to answer. Leaving this scope
      // removes the partial file and returns the reservation.
      log_upload_end(server, id, received, "aborted: " + ec.message());
      co_return std::nullopt;
    }
    const std::size_t got = chunk.size() - parser.get().body().size;
    received += got;
    if (!body.write({chunk.data(), got})) break;
  }
  if (!body.finish()) {
    log_upload_end(server, id, received, "refused: " + body.error());
    co_return error_reply(
        body.storage_failed() ? http::status::internal_server_error : http::status::bad_request,
        body.storage_failed() ? "storage" : "bad_request", body.error());
  }
  Stored stored;
  if (const std::error_code ec = body.commit(stored)) {
    log_upload_end(server, id, received, "storage failed: " + ec.message());
    co_return error_reply(http::status::internal_server_error, "storage", ec.message());
  }
  log_upload_end(server, id, stored.bytes, "stored as " + stored.name);
  co_return json_reply(http::status::created,
                       {{"name", stored.name}, {"bytes", stored.bytes}, {"sha256", stored.sha256}},
                       request.keep_alive());
}

}  // namespace

net::awaitable<void> serve_http(Server& server, net::ip::tcp::socket socket,
                                Connection connection) {
  beast::tcp_stream stream{std::move(socket)};
  beast::flat_buffer buffer{header_limit};  // its maximum size: headers never grow it further
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);  // --max-body is checked against the declared size instead
    stream.expires_after(idle_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (ec == http::error::end_of_stream || ec == net::error::eof) co_return;
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
        co_await send(stream, Request{},
                      error_reply(http::status::bad_request, "bad_request", ec.message()));
        co_await lingering_close(stream);
      }
      co_return;  // timeout, reset: nothing to answer
    }

    const Request& request = parser.get();
    const std::string_view target = request.target();
    const std::string_view path = path_of(target);
    const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;

    if (path == "/ws/upload" && beast::websocket::is_upgrade(request)) {
      co_await serve_websocket(server, std::move(stream), parser.release(), connection);
      co_return;
    }
    // A complete request: not shed from here until the loop comes round again
    // (a WebSocket is busy only once its first message is in, above).
    const Connection::Busy in_request = connection.busy();

    Reply reply;
    if (path == "/api/v1/upload" && request.method() == http::verb::post) {
      std::optional<Reply> answer = co_await upload(server, stream, buffer, parser);
      if (!answer) co_return;
      reply = std::move(*answer);
    } else if (path == "/api/v1/upload") {
      reply = error_reply(http::status::method_not_allowed, "method_not_allowed", "use POST");
    } else if (path == "/metrics" && request.method() == http::verb::get) {
      reply = {http::status::ok, metrics_text(server), "text/plain; version=0.0.4", 0, !has_body};
    } else if (path == "/healthz" && request.method() == http::verb::get) {
      reply = {http::status::ok, "ok\n", "text/plain", 0, !has_body};
    } else if (path == "/metrics" || path == "/healthz" || path == "/ws/upload") {
      reply = error_reply(http::status::method_not_allowed, "method_not_allowed", "use GET");
    } else {
      reply = error_reply(http::status::not_found, "not_found", "no such path");
    }

    // A body left unread means we cannot find the next request: close.
    const bool keep_alive = reply.keep_alive && request.keep_alive() && parser.is_done();
    reply.keep_alive = keep_alive;
    co_await send(stream, request, std::move(reply));
    if (!keep_alive) {
      co_await lingering_close(stream);
      co_return;
    }
  }
}

}  // namespace upload_server
