#include "websocket_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <vector>

#include "refusal.hpp"
#include "storage.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace net::experimental::awaitable_operators;

using WebSocket = websocket::stream<beast::tcp_stream>;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_request_message = 4096;
constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::uint64_t progress_every = 64 * 1024 * 1024;

struct UploadRequest {
  std::string name;
  std::uint64_t size = 0;
};

std::optional<UploadRequest> parse_request(std::string_view text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return std::nullopt;
  const auto name = json.find("name");
  const auto size = json.find("size");
  if (name == json.end() || !name->is_string() || size == json.end() ||
      !size->is_number_unsigned()) {
    return std::nullopt;
  }
  return UploadRequest{name->get<std::string>(), size->get<std::uint64_t>()};
}

// The server's messages. Built outside the coroutines: GCC 12 rejects braced
// initializer lists of string literals inside a coroutine body.
std::string status_message(std::string_view status, std::string_view key, std::uint64_t value,
                           std::string_view sha256 = {}) {
  nlohmann::json message = {{"status", status}, {key, value}};
  if (!sha256.empty()) message["sha256"] = sha256;
  return message.dump();
}

net::awaitable<void> send_text(WebSocket& ws, std::string text) {
  ws.text(true);
  co_await ws.async_write(net::buffer(text), use_tuple);  // a failure shows in the next read
}

net::awaitable<void> close(WebSocket& ws, std::uint16_t code, std::string_view why) {
  // The frame keeps a copy; a close reason is limited to 123 bytes.
  const std::string reason{why.substr(0, max_close_reason)};
  co_await ws.async_close(websocket::close_reason{static_cast<websocket::close_code>(code), reason},
                          use_tuple);
}

// Waits for room (see admit_upload) while watching the socket: a client has
// nothing to send before "ready", so the socket turning readable means it
// left (or broke the protocol). Then the wait is cancelled, and with it the
// place in the pool's queue, instead of lasting until --wait runs out.
net::awaitable<std::optional<admit::Admission>> admit_while_connected(Server& server, WebSocket& ws,
                                                                      UploadId id,
                                                                      std::uint64_t size) {
  auto& socket = beast::get_lowest_layer(ws).socket();
  auto outcome = co_await (admit_upload(server, id, size) ||
                           socket.async_wait(net::socket_base::wait_read, use_tuple));
  if (outcome.index() == 1) co_return std::nullopt;
  co_return std::move(std::get<0>(outcome));
}

}  // namespace

net::awaitable<void> serve_websocket(Server& server, beast::tcp_stream stream,
                                     beast::http::request<beast::http::buffer_body> upgrade,
                                     Connection& connection) {
  WebSocket ws{std::move(stream)};
  beast::get_lowest_layer(ws).expires_never();  // the websocket's own timeouts take over
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(max_request_message);
  if (auto [ec] = co_await ws.async_accept(upgrade, use_tuple); ec) co_return;

  beast::flat_buffer message;
  if (auto [ec, n] = co_await ws.async_read(message, use_tuple); ec) co_return;
  const Connection::Busy in_request = connection.busy();  // a complete request: not shed
  const auto request =
      ws.got_text() ? parse_request(beast::buffers_to_string(message.data())) : std::nullopt;
  if (!request) {
    co_await close(ws, websocket::close_code::policy_error,
                   R"(expected a text message {"name": "...", "size": N})");
    co_return;
  }

  const UploadId id{"ws", server.next_upload_id++};
  std::optional<admit::Admission> admission =
      co_await admit_while_connected(server, ws, id, request->size);
  if (!admission) {
    log_upload_end(server, id, 0, "client left while waiting for room");
    co_return;
  }
  if (!*admission) {
    WebSocketRefusal refusal = websocket_refusal(admission->error());
    co_await close(ws, refusal.close_code, std::move(refusal.reason));
    co_return;
  }
  const RunningUpload running{server};

  UploadFile file;
  if (const std::error_code ec = file.open(server.options.dir, sanitize_file_name(request->name))) {
    log_upload_end(server, id, 0, "storage failed: " + ec.message());
    co_await close(ws, websocket::close_code::internal_error, "cannot store the upload");
    co_return;
  }
  co_await send_text(ws, status_message("ready", "reserved_bytes", (*admission)->bytes()));

  // The data: any number of binary messages, read in fixed-size pieces.
  ws.read_message_max(0);  // no per-message limit: the declared size is the limit
  std::vector<char> chunk(chunk_size);
  std::uint64_t received = 0;
  std::uint64_t next_progress = progress_every;
  // If the shutdown's grace runs out, the client hears 1001 "going away";
  // the pending read then fails and this coroutine ends like an abort.
  bool cut_off = false;
  auto cut_off_hook = server.cut_offs.add([&ws, &cut_off] {
    cut_off = true;
    ws.async_close(websocket::close_reason{websocket::close_code::going_away, "server shut down"},
                   [](const beast::error_code&) {});
  });
  while (received < request->size) {
    auto [ec, n] = co_await ws.async_read_some(net::buffer(chunk), use_tuple);
    if (cut_off) {  // the close is under way: no second one
      log_upload_end(server, id, received, "cut off by the shutdown");
      co_return;
    }
    if (ec) {
      // Gone, or closed early. Leaving this scope removes the partial file
      // and returns the reservation.
      log_upload_end(server, id, received, "aborted: " + ec.message());
      co_return;
    }
    if (ws.got_text()) {
      cut_off_hook.end();  // this session closes the connection itself
      log_upload_end(server, id, received, "refused: text frame during the data");
      co_await close(ws, websocket::close_code::bad_payload, "expected binary frames");
      co_return;
    }
    if (n > request->size - received) {
      cut_off_hook.end();
      log_upload_end(server, id, received + n, "refused: more than declared");
      co_await close(ws, close_too_big,
                     "more than the declared " + std::to_string(request->size) + " bytes");
      co_return;
    }
    if (const std::error_code write_error = file.write({chunk.data(), n})) {
      cut_off_hook.end();
      log_upload_end(server, id, received, "storage failed: " + write_error.message());
      co_await close(ws, websocket::close_code::internal_error, "cannot store the upload");
      co_return;
    }
    received += n;
    if (received >= next_progress && received < request->size) {
      co_await send_text(ws, status_message("progress", "bytes", received));
      next_progress += progress_every;
    }
  }

  cut_off_hook.end();  // all received: from here on, this session closes the connection

  Stored stored;
  if (const std::error_code ec = file.commit(stored)) {
    log_upload_end(server, id, received, "storage failed: " + ec.message());
    co_await close(ws, websocket::close_code::internal_error, "cannot store the upload");
    co_return;
  }
  log_upload_end(server, id, stored.bytes, "stored as " + stored.name);
  co_await send_text(ws, status_message("done", "bytes", stored.bytes, stored.sha256));
  co_await close(ws, websocket::close_code::normal, "");
}

}  // namespace upload_server
