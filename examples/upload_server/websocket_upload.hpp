// upload_server/websocket_upload.hpp - the data phase of a WebSocket upload,
// and what it shares with the session before it (websocket_session.cpp).
//
// After "ready" the client sends exactly the declared N bytes in binary
// messages, the last of which ends at N. Anything else is cut off with a
// close frame that says why, and one log line:
//   more than N bytes, wherever it crosses N (a read, a frame, a
//   later frame of the last message)                      1009
//   a text message                                         1007
//   no data for --body-timeout, or less than --min-rate    1008
//   (pings and pongs are not data)
//   the shutdown's grace over                              1001
//   the file cannot be written                             1011
// A cut-off upload gives its reservation back at once, before the client
// has answered the close (with --buffer memory once its pending read has
// ended, since the part is that read's buffer), and leaves no file behind.
#pragma once

#include <admit/reservation.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "preread_stream.hpp"
#include "server.hpp"
#include "storage.hpp"

namespace upload_server {

using WebSocket = boost::beast::websocket::stream<PrereadStream>;

/// How long the closing handshake may take once the server has sent its
/// close frame (as nginx's lingering_timeout): a client that never answers
/// does not keep its connection longer.
inline constexpr std::chrono::seconds close_timeout{5};

/// Closes `ws` while the session's read is pending (a deadline passed, the
/// server shuts down): the close frame goes out now, and the pending read
/// ends once the client has answered it (or after close_timeout). The
/// session then sees happened(), logs reason(), awaits closed() and returns.
/// The first close wins; later ones do nothing.
class CutOff {
 public:
  explicit CutOff(WebSocket& ws) : ws_{ws}, state_{std::make_shared<State>(ws.get_executor())} {}

  void operator()(std::uint16_t code, std::string reason);

  [[nodiscard]] bool happened() const noexcept { return state_->happened; }
  [[nodiscard]] const std::string& reason() const noexcept { return state_->reason; }

  /// Waits until the closing handshake is over (bounded by close_timeout).
  [[nodiscard]] boost::asio::awaitable<void> closed();

 private:
  struct State {
    explicit State(const boost::asio::any_io_executor& executor)
        : closed_event{executor, boost::asio::steady_timer::time_point::max()} {}
    bool happened = false;
    bool closed = false;
    std::string reason;
    boost::asio::steady_timer closed_event;  // cancelled when the close completes
  };

  WebSocket& ws_;
  std::shared_ptr<State> state_;  // shared with the close's completion handler
};

/// Sends a close frame and waits for the closing handshake; `why` is cut to
/// the 123 bytes a close frame can carry. Never fails: a client that is gone
/// needs no answer.
[[nodiscard]] boost::asio::awaitable<void> close(WebSocket& ws, std::uint16_t code,
                                                 std::string_view why);

/// Sends one text message; a failure shows in the next read.
[[nodiscard]] boost::asio::awaitable<void> send_text(WebSocket& ws, std::string text);

/// {"status": STATUS, KEY: VALUE} and, if given, "sha256".
[[nodiscard]] std::string status_message(std::string_view status, std::string_view key,
                                         std::uint64_t value, std::string_view sha256 = {});

/// The data phase of an admitted upload: with --buffer memory allocates its
/// part (memory_part.hpp; refused: close 1013), sends "ready", reads `size`
/// bytes into `file` and answers "done" and close 1000, or cuts it off (see
/// the top of this file). `reservation` is held until then.
[[nodiscard]] boost::asio::awaitable<void> receive_upload(Server& server, WebSocket& ws,
                                                          UploadId id, std::uint64_t size,
                                                          admit::SlotReservation reservation,
                                                          UploadFile file);

}  // namespace upload_server
