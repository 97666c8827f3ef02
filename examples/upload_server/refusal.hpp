// upload_server/refusal.hpp - how a refusal becomes a protocol answer.
//
// A refused upload is answered, never dropped: the client learns whether to
// retry (and when) or to give up, with the figures behind the decision.
//
//   Reason        HTTP                       WebSocket close
//   too_large     413, no Retry-After        1009 (message too big)
//   no_slot,
//   no_memory,    503 + Retry-After          1013 (try again later)
//   queue_full,
//   timeout,
//   cancelled,
//   pressure
//   closed        503 + Retry-After          1001 (going away: shutting down)
//
// When to retry is the server's RetryAdvice (retry_advice.hpp): an
// admit::RetryEstimator over the pool, jittered per answer. The delay is given
// in milliseconds as "retry_after_ms" in the JSON body and in the close
// reason, and as its ceiling in whole seconds in Retry-After (RFC 9110 10.2.3
// has no finer unit), so that the header never asks a client to come back
// sooner than the body does.
//
// With --buffer memory the allocation of an admitted upload's part may fail
// for want of memory in the process itself (memory_part.hpp), not by the
// pool's decision: reason out_of_memory, 503 + Retry-After / close 1013.
//
// The JSON body (HTTP) carries the reason and every figure of the Rejection.
// A WebSocket close reason is limited to 123 bytes: it is a JSON object too,
//   {"reason":"no_memory","retry_after_ms":2400,"needed_bytes":...,
//    "available_bytes":...,"memory_budget":...}
// with "reason" and "retry_after_ms" always, then the figures that explain
// the reason, each one only if it still fits (with 20-digit figures the last
// ones are left out; with real ones they all fit).
#pragma once

#include <admit/rejection.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace upload_server {

/// When a refused client may come back; nullopt: never (too_large).
using RetryAfter = std::optional<std::chrono::milliseconds>;

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
/// and "retry_after_ms" when `retry` is set.
[[nodiscard]] std::string refusal_json(const admit::Rejection& rejection, RetryAfter retry);

/// Retry-After's whole seconds for a delay: its ceiling, at least 1.
[[nodiscard]] unsigned retry_after_seconds(std::chrono::milliseconds delay);

/// `retry` is the delay for a transient refusal (the server always has one);
/// too_large ignores it.
[[nodiscard]] HttpRefusal http_refusal(const admit::Rejection& rejection, RetryAfter retry);

[[nodiscard]] WebSocketRefusal websocket_refusal(const admit::Rejection& rejection,
                                                 RetryAfter retry);

/// Close 1013 with {"reason":"out_of_memory","retry_after_ms":...,"needed_bytes":BYTES}:
/// the process could not allocate an upload's part of `bytes`.
[[nodiscard]] WebSocketRefusal out_of_memory_close(std::uint64_t bytes,
                                                   std::chrono::milliseconds retry);

/// Close 1001 with {"reason":"closed","retry_after_ms":...}: an upload cut
/// off by the shutdown, told when the server may be back.
[[nodiscard]] WebSocketRefusal shutdown_close(std::chrono::milliseconds retry);

/// The WebSocket close code for an upload that sent more than it declared.
inline constexpr std::uint16_t close_too_big = 1009;

/// The longest close reason a WebSocket close frame can carry.
inline constexpr std::size_t max_close_reason = 123;

}  // namespace upload_server
