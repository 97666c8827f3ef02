// upload_server/preread_stream.hpp - a TCP stream that first hands out the
// bytes already read from it.
//
// The HTTP parser reads the upgrade request through a buffer of its own and
// may read past the request's end: a client may send its first WebSocket
// message in the same write as the upgrade request. Beast's
// websocket::stream::async_accept takes the parsed request or raw bytes, not
// both, so those bytes would be lost and the client would wait for an answer
// that never comes. This stream, the WebSocket's next layer, returns them to
// the first reads and is a plain tcp_stream after that.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <utility>

namespace upload_server {

class PrereadStream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;

  /// `preread`: bytes read from `stream` that belong to what follows.
  PrereadStream(next_layer_type stream, boost::beast::flat_buffer preread)
      : stream_{std::move(stream)}, preread_{std::move(preread)} {}

  executor_type get_executor() noexcept { return stream_.get_executor(); }
  next_layer_type& next_layer() noexcept { return stream_; }
  const next_layer_type& next_layer() const noexcept { return stream_; }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return boost::asio::async_initiate<ReadToken, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& into) {
          if (preread_.size() == 0) {
            stream_.async_read_some(into, std::move(handler));
            return;
          }
          const std::size_t n = boost::asio::buffer_copy(into, preread_.data());
          preread_.consume(n);
          // Completes as a read does: later, never inside this call.
          boost::asio::post(
              stream_.get_executor(),
              boost::beast::bind_front_handler(std::move(handler), boost::beast::error_code{}, n));
        },
        token, buffers);
  }

  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return stream_.async_write_some(buffers, std::forward<WriteToken>(token));
  }

 private:
  next_layer_type stream_;
  boost::beast::flat_buffer preread_;
};

// A WebSocket's closing handshake ends by shutting the TCP connection down;
// Beast finds these by argument-dependent lookup, and the tcp_stream's own
// teardown does the work.
inline void teardown(boost::beast::role_type role, PrereadStream& stream,
                     boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, PrereadStream& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace upload_server
