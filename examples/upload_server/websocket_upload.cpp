// The data phase of a WebSocket upload: the declared bytes, exactly, under a
// data deadline. See websocket_upload.hpp for what is cut off and how.
#include "websocket_upload.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "progress.hpp"
#include "refusal.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// One buffer per upload. Beast reads a frame's payload straight into the
// free part of it, so a read is one recv of up to what is free; the file gets
// one write (and the hash one update) once 64 KiB or more have come, not one
// per small read: a frame's header is read with the first ~1.5 KiB of its
// payload, and a slow client's data comes in pieces. Sized by measurement
// (server and client CPU per byte, 2.5 GB in 1 MiB frames, alternated
// rounds): 128 KiB used the least; 256 KiB to 1 MiB reads cost 20-30 % more
// kernel time (probably loopback packets that arrive during a long recv,
// left to the reader to handle) for no more throughput. With --buffer memory
// the part takes its place, written once full.
constexpr std::size_t buffer_size = 128 * 1024;
constexpr std::size_t stream_write_at = 64 * 1024;
constexpr std::uint64_t progress_every = 64 * 1024 * 1024;

// An upload the session ends itself: its close frame and its log line.
struct Refusal {
  std::uint16_t code;
  std::string reason;   // for the client
  std::string outcome;  // for the log
};

// Outside the coroutine: GCC 12 rejects braced initializer lists of string
// literals inside a coroutine body.
Refusal refusal(std::uint16_t code, std::string reason, std::string outcome) {
  return {code, std::move(reason), std::move(outcome)};
}

// Counts an upload as answered (Server::uploads_told) from the moment its
// answer goes out until it ends: the shutdown's "cut off without a word"
// must not count a client that was sent 1001 and has not answered it yet.
class Told {
 public:
  explicit Told(Server& server) noexcept : server_{server} {}
  ~Told() {
    if (told_) --server_.uploads_told;
  }
  Told(const Told&) = delete;
  Told& operator=(const Told&) = delete;

  void operator()() noexcept {
    if (!told_) ++server_.uploads_told;
    told_ = true;
  }

 private:
  Server& server_;
  bool told_ = false;
};

}  // namespace

void CutOff::operator()(std::uint16_t code, std::string reason) {
  if (state_->happened) return;
  state_->happened = true;
  state_->reason = std::move(reason);
  const websocket::close_reason frame{static_cast<websocket::close_code>(code),
                                      std::string_view{state_->reason}.substr(0, max_close_reason)};
  // The state, not `this`: the close may end after the session has.
  ws_.async_close(frame, [state = state_](const beast::error_code&) {
    state->closed = true;
    state->closed_event.cancel();
  });
}

net::awaitable<void> CutOff::closed() {
  // Beast bounds the close by close_timeout, so this wait is bounded too.
  if (!state_->closed) co_await state_->closed_event.async_wait(use_tuple);
}

net::awaitable<void> close(WebSocket& ws, std::uint16_t code, std::string_view why) {
  // The frame keeps a copy; a close reason is limited to 123 bytes.
  const std::string reason{why.substr(0, max_close_reason)};
  co_await ws.async_close(websocket::close_reason{static_cast<websocket::close_code>(code), reason},
                          use_tuple);
}

net::awaitable<void> send_text(WebSocket& ws, std::string text) {
  ws.text(true);
  co_await ws.async_write(net::buffer(text), use_tuple);  // a failure shows in the next read
}

std::string status_message(std::string_view status, std::string_view key, std::uint64_t value,
                           std::string_view sha256) {
  nlohmann::json message = {{"status", status}, {key, value}};
  if (!sha256.empty()) message["sha256"] = sha256;
  return message.dump();
}

net::awaitable<void> receive_upload(Server& server, WebSocket& ws, UploadId id, std::uint64_t size,
                                    admit::SlotReservation reservation, UploadFile file) {
  // What the data passes through (--buffer): the part charges `reservation`,
  // which stays in this frame, and as a local it is destroyed before it.
  // An upload of 0 bytes has nothing to hold: the stream buffer only finds
  // oversending.
  MemoryPart part;
  std::unique_ptr<char[]> stream_buffer;  // not value-initialised: every byte is read first
  std::span<char> buffer;
  std::size_t write_at = stream_write_at;
  if (server.options.buffer == BufferMode::memory && size != 0) {
    if (const std::optional<PartRefusal> refused = allocate_part(server, reservation, size, part)) {
      const WebSocketRefusal refusal =
          refused->rejection
              ? websocket_refusal(*refused->rejection, server.retry.after(*refused->rejection))
              : out_of_memory_close(refused->bytes,
                                    server.retry.after_out_of_memory(refused->bytes));
      file.discard();
      reservation.release();  // before the log line, whose "in use now" is then without it
      log_upload_end(server, id, 0, "refused: " + describe(*refused));
      co_await close(ws, refusal.close_code, refusal.reason);
      co_return;
    }
    buffer = part.bytes();
    write_at = buffer.size();
  } else {
    stream_buffer.reset(new char[buffer_size]);
    buffer = {stream_buffer.get(), buffer_size};
  }
  // What was reserved, growth for the part included.
  co_await send_text(ws, status_message("ready", "reserved_bytes", reservation.bytes()));
  LiveUploads::Registration live = server.live_uploads.add({.protocol = id.protocol,
                                                            .number = id.number,
                                                            .name = file.planned_name(),
                                                            .declared_size = size,
                                                            .reserved_bytes = reservation.bytes(),
                                                            .buffer_bytes = part.bytes().size()});
  label_upload(reservation, live.entry());

  // The reservation and the part go back together, the part first.
  const auto give_back = [&part, &reservation] {
    part.release();
    reservation.release();
  };
  CutOff cut_off{ws};
  Told told{server};
  // A cut-off upload gives its room back now, not once its client has
  // answered the close; except the part's: it is the buffer of the read
  // still pending, so it comes back once that read has ended (below, within
  // close_timeout), or another upload would be admitted onto memory that is
  // still being written into.
  auto cut = [&cut_off, &part, &reservation, &told](websocket::close_code code, std::string why) {
    if (cut_off.happened()) return;
    if (!part.allocated()) reservation.release();
    told();
    cut_off(code, std::move(why));
  };
  // If the shutdown's grace runs out, the client hears 1001 "going away",
  // and when the server may be back.
  auto shutdown_hook = server.cut_offs.add([&cut, &server] {
    cut(websocket::close_code::going_away, shutdown_close(server.retry.after_shutdown()).reason);
  });
  // No data for --body-timeout, or too little for --min-rate: 1008. Pings
  // and pongs never reach this loop (Beast answers them inside the read), so
  // they do not count as data.
  ProgressWatch watch{
      ws.get_executor(),
      {.body_timeout = server.options.body_timeout, .min_rate = server.options.min_rate},
      [&cut](std::string why) { cut(websocket::close_code::policy_error, std::move(why)); }};

  live.watch(watch);

  std::size_t filled = 0;  // received, not written yet: < write_at between reads
  std::uint64_t received = 0;
  std::uint64_t next_progress = progress_every;
  std::optional<Refusal> refused;
  auto store = [&file, &buffer, &filled, &refused] {
    const std::error_code write_error = file.write({buffer.data(), filled});
    filled = 0;
    if (write_error) {
      refused = refusal(websocket::close_code::internal_error, "cannot store the upload",
                        "storage failed: " + write_error.message());
    }
    return !write_error;
  };
  // Until N bytes have come and the message that brought them is complete: a
  // read may end at N in the middle of a frame, and the rest of that frame,
  // or a later frame of the message, would be more than declared. (A message
  // may end with an empty final frame: the next read then returns 0 bytes.)
  // A read never goes past the frame it is in, so the byte count is exact
  // whatever the frames' sizes.
  while (received < size || !ws.is_message_done()) {
    auto [ec, n] = co_await ws.async_read_some(
        net::buffer(buffer.data() + filled, buffer.size() - filled), use_tuple);
    if (cut_off.happened()) {  // the read ended because of the close
      give_back();             // what `cut` could not give back yet
      log_upload_end(server, id, received, "cut off: " + cut_off.reason());
      co_await cut_off.closed();
      co_return;
    }
    if (ec) {
      // Gone, or closed early. Leaving this scope removes the partial file.
      give_back();
      log_upload_end(server, id, received, "aborted: " + ec.message());
      co_return;
    }
    if (ws.got_text()) {
      refused = refusal(websocket::close_code::bad_payload, "expected binary frames",
                        "refused: text frame during the data");
      break;
    }
    if (n > size - received) {
      received += n;
      refused = refusal(close_too_big, "more than the declared " + std::to_string(size) + " bytes",
                        "refused: more than declared");
      break;
    }
    received += n;
    filled += n;
    watch.data(n);
    if (filled >= write_at && !store()) break;
    if (received >= next_progress && received < size) {
      co_await send_text(ws, status_message("progress", "bytes", received));
      next_progress += progress_every;
    }
  }
  if (!refused && filled > 0) store();

  // From here on, this session closes the connection itself.
  watch.stop();
  live.unwatch();
  shutdown_hook.end();
  told();
  if (refused) {
    file.discard();
    give_back();
    log_upload_end(server, id, received, refused->outcome);
    co_await close(ws, refused->code, refused->reason);
    co_return;
  }

  Stored stored;
  const std::error_code commit_error = file.commit(stored);
  give_back();  // before the log line, whose "in use now" is then without it
  if (commit_error) {
    log_upload_end(server, id, received, "storage failed: " + commit_error.message());
    co_await close(ws, websocket::close_code::internal_error, "cannot store the upload");
    co_return;
  }
  log_upload_end(server, id, stored.bytes, "stored as " + stored.name);
  co_await send_text(ws, status_message("done", "bytes", stored.bytes, stored.sha256));
  co_await close(ws, websocket::close_code::normal, "");
}

}  // namespace upload_server
