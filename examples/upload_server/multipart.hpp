// multipart.hpp - a streaming multipart/form-data parser (RFC 7578, RFC 2046).
//
// An upload body may be many gigabytes, so the parser never holds it: feed it
// the body in chunks as they arrive and it hands each part's bytes to a sink
// as slices of those chunks. Its memory is bounded whatever the body's size:
// one part's header block (at most max_header_bytes) and a counter.
//
// The one piece of state that crosses chunk boundaries inside part data is how
// many bytes of the delimiter "\r\n--" + boundary the end of the last chunk
// matched. Those bytes need no buffer: they are a prefix of the delimiter, so
// if the match fails they are handed on from the delimiter itself. And since a
// boundary cannot contain CR, a failed match can only restart at a CR, never
// part-way through the bytes already matched.
//
// Grammar, as parsed (RFC 2046 5.1.1):
//   body      := [preamble CRLF] "--" boundary padding CRLF part
//                *(CRLF "--" boundary padding CRLF part)
//                CRLF "--" boundary "--" [epilogue]
//   part      := *(header CRLF) CRLF data
//   padding   := *(SP / HTAB)
// The preamble and epilogue are ignored; anything else after a delimiter is an
// error, and so is a body that ends before the closing delimiter (finish()).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace upload_server {

/// The boundary parameter of a multipart/form-data Content-Type, quoted or not.
/// The media type and parameter names match case-insensitively. nullopt when
/// the type is not multipart/form-data or the boundary is missing or not a
/// valid RFC 2046 boundary (1 to 70 characters from its restricted set).
[[nodiscard]] std::optional<std::string> boundary_from_content_type(std::string_view content_type);

/// What a part's header block says about it.
struct PartHeaders {
  std::string name;  ///< Content-Disposition name: the form field
  /// The part's file name, empty if none: filename*'s value decoded (RFC 8187,
  /// `filename*=UTF-8''caf%C3%A9.txt`; it takes precedence, RFC 6266 4.3),
  /// else filename as sent. Not yet safe to use as a path: see sanitize_file_name.
  std::string filename;
  std::string content_type;  ///< Content-Type, empty if none (RFC 7578: text/plain)
};

/// Receives the parts of a body. Calls arrive in order: on_part_begin, any
/// number of on_part_data, on_part_end, then the next part. A sink that wants
/// to stop (its disk is full, say) records that and the caller stops feeding.
class MultipartSink {
 public:
  virtual ~MultipartSink() = default;
  virtual void on_part_begin(const PartHeaders& headers) = 0;
  /// `data` is valid only during the call: copy what you keep. It is never empty.
  virtual void on_part_data(std::string_view data) = 0;
  virtual void on_part_end() = 0;
};

class MultipartParser {
 public:
  enum class Status { need_more, done, error };

  /// The largest part header block accepted, blank line included.
  static constexpr std::size_t max_header_bytes = 8 * 1024;

  /// Throws std::invalid_argument unless `boundary` is a valid RFC 2046
  /// boundary, as boundary_from_content_type returns.
  explicit MultipartParser(std::string_view boundary);

  /// Parses the next `chunk` of the body. Returns done once the closing
  /// delimiter has been seen (later chunks are epilogue and ignored), error
  /// once the body is malformed (see error()), need_more otherwise.
  [[nodiscard]] Status feed(std::string_view chunk, MultipartSink& sink);

  /// Call at the end of the body: done if the closing delimiter was seen, else
  /// it becomes an error ("truncated: ...").
  [[nodiscard]] Status finish() noexcept;

  [[nodiscard]] bool done() const noexcept { return state_ == State::done; }

  /// Why parsing failed; empty unless a call returned Status::error.
  [[nodiscard]] std::string_view error() const noexcept { return error_; }

 private:
  enum class State {
    data,             // inside the preamble or a part's data, looking for a delimiter
    after_delimiter,  // just after "--" boundary: "--", padding or CRLF follows
    close_dash,       // saw the first '-' of the closing "--"
    padding,          // transport padding before the CRLF
    line_feed,        // saw the CR, the LF follows
    headers,          // collecting a part's header block
    done,
    error,
  };

  std::size_t scan_data(std::string_view chunk, std::size_t pos, MultipartSink& sink);
  std::size_t read_headers(std::string_view chunk, std::size_t pos, MultipartSink& sink);
  void step_after_delimiter(char c);
  void on_delimiter(MultipartSink& sink);
  void emit(std::string_view data, MultipartSink& sink);
  void fail(std::string_view message) noexcept;
  [[nodiscard]] Status status() const noexcept;

  std::string delimiter_;  // "\r\n--" + boundary
  // Bytes of delimiter_ matched at the end of the previous chunk. Starts at 2:
  // the first delimiter may open the body, with no CRLF before it.
  std::size_t matched_ = 2;
  State state_ = State::data;
  bool in_part_ = false;  // false in the preamble: its data is dropped
  bool seen_part_ = false;
  std::string header_block_;
  std::string_view error_;
};

}  // namespace upload_server
