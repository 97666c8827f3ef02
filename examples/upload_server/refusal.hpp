// upload_server/refusal.hpp - how a refusal becomes a protocol answer.
//
// A refused upload is answered, never dropped: the client learns whether to
// retry (and when) or to give up, with the figures behind the decision.
//
//   Reason        HTTP                       WebSocket close
//   too_large     413                        1009 (message too big)
//   no_slot,
//   no_memory,    503 + Retry-After: 1       1013 (try again later)
//   queue_full,
//   timeout,
//   cancelled,
//   pressure
//   closed        503 + Retry-After: 30      1001 (going away: shutting down)
//
// With --buffer memory the allocation of an admitted upload's part may fail
// for want of memory in the process itself (memory_part.hpp), not by the
// pool's decision: reason out_of_memory, 503 + Retry-After: 1 / close 1013.
//
// The JSON body (HTTP) carries the reason and every figure of the Rejection;
// a WebSocket close reason is limited to 123 bytes, so it carries the reason
// and the two figures that explain it.
#pragma once

#include <admit/rejection.hpp>
#include <cstdint>
#include <string>

namespace upload_server {

struct HttpRefusal {
  unsigned status;           ///< 413 or 503
  unsigned retry_after = 0;  ///< seconds for the Retry-After header; 0: send none
  std::string body;          ///< JSON (refusal_json)
};

struct WebSocketRefusal {
  std::uint16_t close_code;  ///< 1009, 1013 or 1001
  std::string reason;        ///< at most 123 bytes, as RFC 6455 allows
};

/// {"reason":..., "message":..., "declared_size":..., "needed_bytes":...,
///  "available_bytes":..., "memory_budget":..., "slots_in_use":..., "slots":...}
[[nodiscard]] std::string refusal_json(const admit::Rejection& rejection);

/// The Retry-After (seconds) of a 503 for `reason`: 30 for closed, else 1.
[[nodiscard]] unsigned retry_after_seconds(admit::Reason reason);

[[nodiscard]] HttpRefusal http_refusal(const admit::Rejection& rejection);

[[nodiscard]] WebSocketRefusal websocket_refusal(const admit::Rejection& rejection);

/// Close 1013 with reason "out_of_memory: cannot allocate BYTES bytes for the
/// upload, retry later": the process could not allocate an upload's part.
[[nodiscard]] WebSocketRefusal out_of_memory_close(std::uint64_t bytes);

/// The WebSocket close code for an upload that sent more than it declared.
inline constexpr std::uint16_t close_too_big = 1009;

/// The longest close reason a WebSocket close frame can carry.
inline constexpr std::size_t max_close_reason = 123;

}  // namespace upload_server
