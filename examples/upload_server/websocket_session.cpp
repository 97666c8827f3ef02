// A WebSocket upload from the upgrade to "ready": the upload request (within
// --first-message-timeout, at most 4096 bytes), --max-body, and the wait for
// room while watching the client. The data phase is in websocket_upload.cpp.
#include "websocket_session.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "body_limit.hpp"
#include "refusal.hpp"
#include "storage.hpp"
#include "tenants.hpp"
#include "upload_request.hpp"
#include "websocket_upload.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace net::experimental::awaitable_operators;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// "10 s" or "250 ms", as ProgressWatch says it.
std::string human(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000)
                               : fmt::format("{} ms", d.count());
}

// Calls `expired` once `after` has passed, unless cancelled or destroyed
// first. The callback lives in a state shared with the timer's wait and is
// emptied by cancel(): a timer that fires just as the awaited read completes
// then finds nothing to call, instead of reaching into a finished coroutine.
class Deadline {
 public:
  Deadline(const net::any_io_executor& executor, std::chrono::milliseconds after,
           std::function<void()> expired)
      : state_{std::make_shared<State>(executor, std::move(expired))} {
    state_->timer.expires_after(after);
    state_->timer.async_wait([state = state_](const beast::error_code& ec) {
      if (!ec && state->expired) std::exchange(state->expired, nullptr)();
    });
  }
  ~Deadline() { cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void cancel() noexcept {
    state_->expired = nullptr;
    state_->timer.cancel();
  }

 private:
  struct State {
    State(const net::any_io_executor& executor, std::function<void()> callback)
        : timer{executor}, expired{std::move(callback)} {}
    net::steady_timer timer;
    std::function<void()> expired;
  };
  std::shared_ptr<State> state_;
};

// Reads the upload request: one text message of at most 4096 bytes, within
// --first-message-timeout. Piece by piece rather than with Beast's
// read_message_max, whose 1009 carries no reason. Answers and logs every
// failure itself; returns nothing when the connection is over.
net::awaitable<std::optional<UploadRequest>> read_request(Server& server, WebSocket& ws,
                                                          UploadId id) {
  CutOff cut_off{ws};
  const auto limit = server.options.first_message_timeout;
  Deadline deadline{ws.get_executor(), limit, [&cut_off, limit] {
                      cut_off(websocket::close_code::policy_error,
                              "no upload request within " + human(limit));
                    }};
  beast::flat_buffer message;
  do {
    auto [ec, n] = co_await ws.async_read_some(
        message, max_upload_request_bytes + 1 - message.size(), use_tuple);
    if (cut_off.happened()) {
      log_upload_end(server, id, 0, "cut off: " + cut_off.reason());
      co_await cut_off.closed();
      co_return std::nullopt;
    }
    if (ec) co_return std::nullopt;  // gone before asking for anything: nothing to answer
    if (message.size() > max_upload_request_bytes) {
      deadline.cancel();
      const std::string why =
          fmt::format("the upload request is over {} bytes", max_upload_request_bytes);
      log_upload_end(server, id, 0, "refused: " + why);
      co_await close(ws, close_too_big, why);
      co_return std::nullopt;
    }
  } while (!ws.is_message_done());
  deadline.cancel();

  auto request =
      ws.got_text() ? parse_upload_request(beast::buffers_to_string(message.data())) : std::nullopt;
  if (!request) {
    log_upload_end(server, id, 0, "refused: not an upload request");
    co_await close(ws, websocket::close_code::policy_error,
                   R"(expected a text message {"name": "...", "size": N})");
  }
  co_return request;
}

// What a client that waits for room did to end the wait.
enum class Interruption { left, closing, data };

// RFC 6455 section 5.2: a frame's opcode is the low 4 bits of its first byte.
constexpr unsigned close_opcode = 0x8;
constexpr unsigned ping_opcode = 0x9;
constexpr unsigned pong_opcode = 0xa;

// Completes when the client leaves or sends anything but a ping or pong
// while it waits for room: a client has nothing else to send before
// "ready". What it sent is told by peeking at the first byte (the frame's
// opcode) without taking it from Beast, since a WebSocket read cannot be
// cancelled without failing the stream and the wait may end first. (If
// Beast already holds part of a frame, the byte is from the middle of one:
// whatever it seems to be, the outcome is safe, "data" being the worst.)
net::awaitable<Interruption> client_interrupts(WebSocket& ws) {
  auto& socket = beast::get_lowest_layer(ws).socket();
  if (auto [ec] = co_await socket.async_wait(net::socket_base::wait_read, use_tuple); ec) {
    co_return Interruption::left;  // cancelled because room came: the result is not used
  }
  std::array<unsigned char, 1> first{};
  beast::error_code ec;
  const std::size_t n = socket.receive(net::buffer(first), net::socket_base::message_peek, ec);
  if (ec || n == 0) co_return Interruption::left;  // reset, or gone without a close frame
  const unsigned opcode = first[0] & 0x0fU;
  if (opcode == close_opcode) co_return Interruption::closing;
  if (opcode == ping_opcode || opcode == pong_opcode) {
    // Allowed at any time. Beast answers the ping once it reads, when the
    // upload starts; left unread, the ping keeps the socket readable, so
    // watching on would spin. Stop watching: --wait still bounds the wait.
    net::steady_timer never{socket.get_executor(), net::steady_timer::time_point::max()};
    co_await never.async_wait(use_tuple);
    co_return Interruption::left;  // only a cancellation ends it: the result is not used
  }
  co_return Interruption::data;
}

}  // namespace

net::awaitable<void> serve_websocket(Server& server, beast::tcp_stream stream,
                                     beast::http::request<beast::http::buffer_body> upgrade,
                                     beast::flat_buffer preread, Connection& connection) {
  stream.expires_never();  // the WebSocket's timeouts and ours take over
  WebSocket ws{std::move(stream), std::move(preread)};
  // Beast's idle timeout (300 s, pinging at half) is only a backstop: the
  // first-message and data deadlines come first. Its handshake timeout also
  // bounds the closing handshake: close_timeout.
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.handshake_timeout = close_timeout;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(beast::http::field::server, "admit-upload-server");  // as the HTTP replies
  }));
  ws.read_message_max(0);  // the limits are ours: 4096 bytes for the request, then the size
  if (auto [ec] = co_await ws.async_accept(upgrade, use_tuple); ec) co_return;

  const UploadId id{"ws", server.next_upload_id++};
  const std::optional<UploadRequest> request = co_await read_request(server, ws, id);
  if (!request) co_return;
  const Connection::Busy in_request = connection.busy();  // a complete request: not shed

  // One body limit for every upload path, before admission is even asked.
  if (const std::optional<OverBodyLimit> over = check_body_limit(server.options, request->size)) {
    WebSocketRefusal refusal = over_body_limit_close(*over);
    log_upload_end(server, id, 0, "refused: " + refusal.reason);
    co_await close(ws, refusal.close_code, std::move(refusal.reason));
    co_return;
  }

  // Before admission, as over HTTP: no wait, no "ready", for what cannot fit.
  if (const SpaceCheck space = check_free_space(server.options.dir, request->size); space.error) {
    log_upload_end(server, id, 0, "refused: " + describe(space));
    co_await close(ws, websocket::close_code::internal_error,
                   "insufficient storage: " + describe(space));
    co_return;
  }

  // Wait for room (see admit_upload) while watching the client: one that
  // leaves or breaks the protocol ends the wait at once, and with it its
  // place in the pool's queue, instead of holding it until --wait runs out.
  const UploadTenant tenant =
      choose_tenant(server, upgrade[server.options.tenant_header], upgrade[bypass_header],
                    upgrade.target());
  auto outcome =
      co_await (admit_upload(server, id, request->size, tenant) || client_interrupts(ws));
  if (outcome.index() == 1) {
    switch (std::get<1>(outcome)) {
      case Interruption::left:
        log_upload_end(server, id, 0, "client left while waiting for room");
        break;
      case Interruption::closing:  // answer its close frame
        log_upload_end(server, id, 0, "client left while waiting for room");
        co_await close(ws, websocket::close_code::normal, "");
        break;
      case Interruption::data:
        log_upload_end(server, id, 0, "refused: data before \"ready\"");
        co_await close(ws, websocket::close_code::policy_error,
                       "sent data before \"ready\": wait for it");
        break;
    }
    co_return;
  }
  admit::Admission admission = std::move(std::get<0>(outcome));
  if (!admission) {
    WebSocketRefusal refusal =
        websocket_refusal(admission.error(), server.retry.after(admission.error()));
    co_await close(ws, refusal.close_code, std::move(refusal.reason));
    co_return;
  }
  const RunningUpload running{server};

  UploadFile file;
  if (const std::error_code ec =
          file.open(server.options.dir, sanitize_file_name(request->name), request->size)) {
    admission->release();  // before the log line, whose "in use now" is then without it
    log_upload_end(server, id, 0, "storage failed: " + ec.message());
    co_await close(
        ws, websocket::close_code::internal_error,
        is_out_of_space(ec) ? "insufficient storage: " + ec.message() : "cannot store the upload");
    co_return;
  }
  co_await receive_upload(server, ws, id, request->size, *std::move(admission), std::move(file));
}

}  // namespace upload_server
