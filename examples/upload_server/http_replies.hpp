// http_replies.hpp - every answer the HTTP side of the server gives, built
// without a network so that the unit tests can check each one.
//
// GET /healthz answers 200 "ok\n", or 503 "pressure\n" with Retry-After while
// the pool is under memory pressure (--follow-memory), so that a load
// balancer sends new uploads elsewhere; both text/plain.
//
// GET /debug/uploads answers 200 with every upload running now, as JSON
// (live_uploads.hpp).
//
// Answers other than a 201 and /healthz's are JSON with a machine-readable "error" (the
// status, in words) and a "message" for people, plus "reason" and the figures
// where the server has them:
//
//   400 bad_request           malformed request, multipart body or ?name= escape
//   405 method_not_allowed    with Allow: the methods the path takes
//   408 request_timeout       reason header_timeout (no complete head in time)
//                             or body_timeout (no data for --body-timeout, or
//                             below --min-rate); the figures received_bytes, ...
//   411 length_required       chunked or no Content-Length: admission needs a size
//   413 max_body              over --max-body (body_limit.hpp), before admission
//   413 / 503                 refused by admission (refusal.hpp)
//   414 uri_too_long          a target over max_target_length
//   426 upgrade_required      GET /ws/upload without the upgrade; Upgrade: websocket
//   431 request_header_fields_too_large   a head over max_head_bytes
//   500 storage               the disk failed otherwise
//   503 service_unavailable   reason out_of_memory: the process could not
//                             allocate an admitted upload's part (--buffer
//                             memory), with Retry-After and needed_bytes
//   507 insufficient_storage  the disk (or the quota) is full: ENOSPC, EDQUOT,
//                             or the upload cannot fit in what is left on it
//
// Every answer to an upload (POST /api/v1/upload, whatever its status)
// carries RateLimit-Policy and RateLimit with the pool's figures
// (rate_limit.hpp); a 503 carries Retry-After, the ceiling in seconds of the
// body's retry_after_ms (refusal.hpp).
//
// A reply closes the connection unless it says keep_alive: after an error the
// server cannot know where the next request starts.
#pragma once

#include <admit/rejection.hpp>
#include <boost/beast/http/status.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "body_limit.hpp"
#include "rate_limit.hpp"
#include "refusal.hpp"
#include "storage.hpp"

namespace upload_server {

/// The longest request head (request line and header fields) read: more gets 431.
inline constexpr std::size_t max_head_bytes = 16 * 1024;

/// The longest request target: more gets 414 (as nginx's 8 KiB line buffers).
inline constexpr std::size_t max_target_length = 8 * 1024;

struct Reply {
  boost::beast::http::status status = boost::beast::http::status::ok;
  std::string body;
  std::string_view content_type = "application/json";
  unsigned retry_after = 0;  ///< seconds for Retry-After; 0: none
  bool keep_alive = false;
  std::string_view allow;    ///< for Allow (a 405): "POST", "GET, HEAD"
  std::string_view upgrade;  ///< for Upgrade (a 426): "websocket"
  /// RateLimit-Policy and RateLimit (rate_limit.hpp): set on every answer to
  /// an upload; empty: neither is sent.
  RateLimitFields rate_limit;
};

/// {"error": error, "message": message}
[[nodiscard]] Reply error_reply(boost::beast::http::status status, std::string_view error,
                                std::string_view message);

[[nodiscard]] Reply bad_request(std::string_view message);
[[nodiscard]] Reply not_found();
[[nodiscard]] Reply length_required();
/// 405 with Allow: `allow` (a string that outlives the reply).
[[nodiscard]] Reply method_not_allowed(std::string_view allow);
/// 426 for a plain GET of the WebSocket endpoint.
[[nodiscard]] Reply upgrade_required();
[[nodiscard]] Reply target_too_long();
[[nodiscard]] Reply head_too_large();

/// 413 (too_large) or 503 + Retry-After (from `retry`), with refusal_json's body.
[[nodiscard]] Reply refusal_reply(const admit::Rejection& rejection, RetryAfter retry);
/// 413 with over_body_limit_json's body.
[[nodiscard]] Reply over_body_limit_reply(const OverBodyLimit& over);

/// 503 + Retry-After: the process could not allocate the `bytes` of an
/// upload's part (memory_part.hpp); reason out_of_memory, with needed_bytes
/// and retry_after_ms (`retry`).
[[nodiscard]] Reply out_of_memory_reply(std::uint64_t bytes, std::chrono::milliseconds retry);

/// 408: the request head was not complete within `header_timeout`.
[[nodiscard]] Reply late_head_reply(std::chrono::milliseconds header_timeout);
/// 408: the body was cut off; `why` is ProgressWatch's sentence.
[[nodiscard]] Reply late_body_reply(std::string_view why, std::uint64_t received_bytes,
                                    std::uint64_t declared_size, const Options& options);

/// 507 before admission: an upload of `declared_size` bytes cannot fit in
/// what check_free_space() found free on --dir, so it is refused before its
/// body (not after writing megabytes); reason insufficient_storage, with
/// needed_bytes (the declared size and a margin) and available_bytes.
[[nodiscard]] Reply insufficient_storage(std::uint64_t declared_size, const SpaceCheck& space);

/// 507 if `error` is out of space, else 500; `message` says what failed.
[[nodiscard]] Reply storage_failure_reply(std::error_code error, std::string_view message);

/// GET /healthz: 200 "ok\n", or 503 "pressure\n" with Retry-After (`retry`,
/// a refused upload's for pressure) while the pool is under pressure (new
/// uploads are refused).
[[nodiscard]] Reply health_reply(bool under_pressure, bool keep_alive,
                                 std::chrono::milliseconds retry);

/// 201: {"files": [{"name", "bytes", "sha256"}, ...]} with every stored file,
/// and the first one's name, bytes and sha256 at the top level as well (the
/// answer's shape from before several files, for clients of one file).
[[nodiscard]] Reply created_reply(const std::vector<Stored>& stored, bool keep_alive);

}  // namespace upload_server
