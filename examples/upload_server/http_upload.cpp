// An upload is admitted after its headers and before its body: the declared
// size is the Content-Length, and a client that sent "Expect: 100-continue"
// (curl does above 1 MiB) gets its 100 only once admitted, so a refused
// client never sends its body. The body then streams through one fixed
// buffer into the storage directory, so memory does not grow with the size;
// or, with --buffer memory, through a part of the upload's reservation
// (memory_part.hpp), allocated before the 100 Continue so that a part that
// cannot be had is answered 503 before the client sends its body.
//
// The body's deadline is progress, not the time to fill a buffer: a
// ProgressWatch (progress.hpp) is told of every socket read's bytes and cuts
// the upload off (408) after --body-timeout without data, or below
// --min-rate. The stream's own timer stays off meanwhile: it would cost a
// system call per read to re-arm, and on expiry it closes the socket, which
// leaves no way to answer.
#include "http_upload.hpp"

#include <admit/admission.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "body_limit.hpp"
#include "multipart.hpp"
#include "percent_encoding.hpp"
#include "progress.hpp"
#include "tenants.hpp"
#include "upload_body.hpp"

namespace upload_server {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// One read, one write and one hash update per chunk at most. Measured on
// 1 GiB over loopback: 64 KiB took the least CPU per byte and was
// the fastest; 256 KiB was close, 512 KiB and 1 MiB, larger than the L2 cache
// that the read's copy, the hash and the write's copy share, were slower.
constexpr std::size_t body_chunk_size = 64 * 1024;
constexpr auto write_timeout = 30s;

// What the head says about the upload, once it passed every check that needs
// no admission.
struct UploadHead {
  std::uint64_t declared = 0;
  std::optional<std::string> boundary;  // set for multipart/form-data
  std::string raw_name;                 // for a raw body: ?name=, decoded
};

// The checks that refuse an upload before it asks the pool for room, so that
// a request that cannot be served never holds a slot or sends its body.
std::optional<Reply> check_head(const Options& options, const UploadParser& parser,
                                UploadHead& head) {
  if (!parser.content_length()) return length_required();  // chunked, or no length at all
  head.declared = *parser.content_length();
  if (const std::optional<OverBodyLimit> over = check_body_limit(options, head.declared)) {
    return over_body_limit_reply(*over);
  }
  const auto& request = parser.get();
  const std::string_view content_type = request[http::field::content_type];
  if (beast::iequals(content_type.substr(0, content_type.find(';')), "multipart/form-data")) {
    head.boundary = boundary_from_content_type(content_type);
    if (!head.boundary) return bad_request("multipart/form-data without a usable boundary");
    return std::nullopt;
  }
  QueryParameter name = query_parameter(request.target(), "name");
  if (!name.valid) return bad_request("?name= has a '%' that is not followed by two hex digits");
  head.raw_name = name.value.empty() ? "upload.bin" : std::move(name.value);
  return std::nullopt;
}

// Cancels the connection's pending read; the socket stays open for the answer.
void cancel_reads(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().cancel(ignored);
}

// Ends an admitted upload with its one log line. The reservation goes back
// first, so that the line's "in use now" is what the other uploads hold; the
// part it pays for before it (memory_part.hpp).
void end_upload(Server& server, UploadId id, admit::Admission& admission, MemoryPart& part,
                std::uint64_t bytes, std::string_view outcome) {
  part.release();
  if (admission) admission->release();
  log_upload_end(server, id, bytes, outcome);
}

std::string answered(const Reply& reply) {
  return "; answered " + std::to_string(static_cast<unsigned>(reply.status));
}

Reply failure_reply(const UploadBody& body) {
  if (body.failure() == UploadBody::Failure::storage) {
    return storage_failure_reply(body.storage_error(), body.error());
  }
  return bad_request(body.error());
}

// How the body phase ended.
struct Received {
  enum class End {
    complete,   // all of Content-Length arrived and went to `body`
    refused,    // `body` failed (malformed multipart, storage): see body.failure()
    late,       // the ProgressWatch cut it off: `why`
    truncated,  // the client ended its side before Content-Length bytes
    gone,       // the connection failed: `why`
  };
  End end = End::complete;
  std::uint64_t bytes = 0;
  std::string why;
};

// Reads the body into `body` through `chunk` (body_chunk_size bytes, or the
// part with --buffer memory).
// Past the head, the parser has nothing left to do (the length is known and
// the body is opaque), and going through it would read in small steps into
// its small buffer and copy each step: so what the head's read brought along
// is taken from `buffer`, then the socket is read straight into the chunk,
// never past `declared` bytes (what follows is the next request's). Each
// socket read counts as progress; the chunk goes to `body` when full or at
// the end, one write (and one hash update) per chunk. The upload's entry in
// the live table reads its progress from the watch, and learns the name of
// each file part once the parser has seen it begin, as does the label of its
// reservation.
net::awaitable<Received> receive_body(const Options& options, beast::tcp_stream& stream,
                                      beast::flat_buffer& buffer, std::uint64_t declared,
                                      std::span<char> chunk, UploadBody& body,
                                      LiveUploads::Registration& live,
                                      admit::SlotReservation& reservation) {
  Received result;
  stream.expires_never();  // the watch below is this phase's deadline
  std::size_t filled = 0;  // bytes of `chunk` not yet handed on
  std::uint64_t left = declared;
  const auto take = [&](std::size_t n) {
    filled += n;
    left -= n;
    result.bytes += n;
  };
  std::size_t files_named = body.files();
  const auto hand_on = [&] {
    const bool written = body.write({chunk.data(), filled});
    filled = 0;
    if (body.files() != files_named) {  // a multipart body began a file part
      files_named = body.files();
      live.entry().name = body.current_file();
      label_upload(reservation, live.entry());
    }
    return written;
  };
  const auto early =
      static_cast<std::size_t>(std::min<std::uint64_t>({buffer.size(), chunk.size(), left}));
  take(net::buffer_copy(net::buffer(chunk.data(), early), buffer.data()));
  buffer.consume(early);

  std::string late_reason;
  ProgressWatch watch{stream.get_executor(),
                      {.body_timeout = options.body_timeout, .min_rate = options.min_rate},
                      [&stream, &late_reason](std::string why) {
                        late_reason = std::move(why);
                        cancel_reads(stream);
                      }};
  live.watch(watch);
  if (early != 0) watch.data(early);
  while (left != 0) {
    if (filled == chunk.size() && !hand_on()) {
      result.end = Received::End::refused;
      break;
    }
    const auto room =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size() - filled, left));
    auto [ec, n] = co_await stream.socket().async_read_some(
        net::buffer(chunk.data() + filled, room), use_tuple);
    take(n);
    if (n != 0) watch.data(n);
    // Late wins over whatever the read says: the watch may have fired while
    // this read's completion was already queued.
    if (watch.late()) {
      result.end = Received::End::late;
      result.why = late_reason;
      break;
    }
    if (ec == net::error::eof) {
      result.end = Received::End::truncated;
      break;
    }
    if (ec) {
      result.end = Received::End::gone;
      result.why = ec.message();
      break;
    }
  }
  watch.stop();
  live.unwatch();
  if (left == 0 && result.end == Received::End::complete && filled != 0 && !hand_on()) {
    result.end = Received::End::refused;
  }
  co_return result;
}

// serve_upload, which sets `body_read` once the whole body is read.
net::awaitable<std::optional<Reply>> run_upload(Server& server, beast::tcp_stream& stream,
                                                beast::flat_buffer& buffer, UploadParser& parser,
                                                bool& body_read) {
  UploadHead head;
  if (std::optional<Reply> refused = check_head(server.options, parser, head))
    co_return std::move(refused);

  const UploadId id{"http", server.next_upload_id++};
  // Before admission and before any 100 Continue: an upload that cannot fit
  // on the disk waits for nothing and sends none of its body.
  if (const SpaceCheck space = check_free_space(server.options.dir, head.declared); space.error) {
    Reply reply = is_out_of_space(space.error)
                      ? insufficient_storage(head.declared, space)
                      : storage_failure_reply(space.error, describe(space));
    log_upload_end(server, id, 0, "refused: " + describe(space) + answered(reply));
    co_return std::move(reply);
  }
  const auto& headers = parser.get();
  const UploadTenant tenant = choose_tenant(server, headers[server.options.tenant_header],
                                            headers[bypass_header], headers.target());
  admit::Admission admission = co_await admit_upload(server, id, head.declared, tenant);
  if (!admission) {  // 413, or 503 + Retry-After
    co_return refusal_reply(admission.error(), server.retry.after(admission.error()));
  }
  const RunningUpload running{server};

  // The buffer the body passes through (--buffer). The part is declared
  // after the admission, so that it is destroyed before the reservation it
  // charges, which stays where it is meanwhile.
  MemoryPart part;
  std::unique_ptr<char[]> stream_chunk;  // not value-initialised: every byte is read first
  std::span<char> chunk;
  if (server.options.buffer == BufferMode::memory) {
    if (const std::optional<PartRefusal> refused =
            allocate_part(server, *admission, head.declared, part)) {
      Reply reply =
          refused->rejection
              ? refusal_reply(*refused->rejection, server.retry.after(*refused->rejection))
              : out_of_memory_reply(refused->bytes,
                                    server.retry.after_out_of_memory(refused->bytes));
      end_upload(server, id, admission, part, 0,
                 "refused: " + describe(*refused) + answered(reply));
      co_return reply;
    }
    chunk = part.bytes();
  } else {
    stream_chunk.reset(new char[body_chunk_size]);
    chunk = {stream_chunk.get(), body_chunk_size};
  }

  // Before the 100 Continue: a raw file that cannot be created is answered
  // before the client sends its body.
  UploadBody body{server.options.dir, std::move(head.boundary), head.raw_name, head.declared};
  if (body.failed()) {
    Reply reply = failure_reply(body);
    end_upload(server, id, admission, part, 0, "storage failed: " + body.error() + answered(reply));
    co_return reply;
  }
  LiveUploads::Registration live =
      server.live_uploads.add({.protocol = id.protocol,
                               .number = id.number,
                               .name = std::string{body.current_file()},
                               .declared_size = head.declared,
                               .reserved_bytes = *admission ? admission->bytes() : 0,
                               .buffer_bytes = part.bytes().size()});
  label_upload(*admission, live.entry());
  const auto& request = parser.get();
  if (beast::iequals(request[http::field::expect], "100-continue")) {
    http::response<http::empty_body> go_on{http::status::continue_, request.version()};
    stream.expires_after(write_timeout);
    if (auto [ec, n] = co_await http::async_write(stream, go_on, use_tuple); ec) {
      end_upload(server, id, admission, part, 0, "client gone: " + ec.message());
      co_return std::nullopt;
    }
  }

  const Received received = co_await receive_body(server.options, stream, buffer, head.declared,
                                                  chunk, body, live, *admission);
  body_read = received.end == Received::End::complete;
  switch (received.end) {
    case Received::End::complete:
      break;
    case Received::End::refused: {
      Reply reply = failure_reply(body);
      const char* what =
          body.failure() == UploadBody::Failure::storage ? "storage failed: " : "refused: ";
      end_upload(server, id, admission, part, received.bytes,
                 what + body.error() + answered(reply));
      co_return reply;
    }
    case Received::End::late: {
      Reply reply = late_body_reply(received.why, received.bytes, head.declared, server.options);
      end_upload(server, id, admission, part, received.bytes,
                 "cut off: " + received.why + answered(reply));
      co_return reply;
    }
    case Received::End::truncated: {
      // The client closed its sending side early; it may still read.
      Reply reply =
          bad_request("the body ended after " + std::to_string(received.bytes) + " of the " +
                      std::to_string(head.declared) + " bytes its Content-Length declares");
      end_upload(server, id, admission, part, received.bytes,
                 "aborted: the body ended early" + answered(reply));
      co_return reply;
    }
    case Received::End::gone:
      // Nobody to answer. Leaving this scope removes the partial files.
      end_upload(server, id, admission, part, received.bytes, "aborted: " + received.why);
      co_return std::nullopt;
  }

  std::vector<Stored> stored;
  if (!body.finish() || body.commit(stored)) {
    Reply reply = failure_reply(body);
    const char* what =
        body.failure() == UploadBody::Failure::storage ? "storage failed: " : "refused: ";
    end_upload(server, id, admission, part, received.bytes, what + body.error() + answered(reply));
    co_return reply;
  }
  std::string names;
  for (const Stored& file : stored) names += (names.empty() ? "" : ", ") + file.name;
  end_upload(server, id, admission, part, received.bytes, "stored as " + names);
  co_return created_reply(stored, request.keep_alive());
}

}  // namespace

net::awaitable<std::optional<Reply>> serve_upload(Server& server, beast::tcp_stream& stream,
                                                  beast::flat_buffer& buffer,
                                                  UploadParser& parser) {
  bool body_read = parser.is_done();  // a body of 0 bytes is read with the head
  std::optional<Reply> reply = co_await run_upload(server, stream, buffer, parser, body_read);
  // With a body left unread, where the next request starts is unknown.
  if (reply && !body_read) reply->keep_alive = false;
  // Every answer says what the pool has left, as it is once this upload is over.
  if (reply) reply->rate_limit = rate_limit_now(server);
  co_return reply;
}

}  // namespace upload_server
