// body_limit.hpp - the one limit on the size of an upload, for every path.
//
// --max-body caps what one upload may declare, whichever way it comes: an HTTP
// raw body, a multipart/form-data body (its whole Content-Length, parts and
// all) or a WebSocket upload's {"size": N}. It is checked against the declared
// size before admission, so that an upload over it never asks the pool for
// room, never gets a 100 Continue or a "ready", and never sends its body.
// Admission's own too_large (413 / 1009 as well) is about the memory budget;
// this one is about what the server agrees to store at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "options.hpp"
#include "refusal.hpp"

namespace upload_server {

/// An upload that declared more than --max-body.
struct OverBodyLimit {
  std::uint64_t declared_size;
  std::uint64_t max_body;
};

/// The check itself: nullopt if `declared_size` is within options.max_body.
[[nodiscard]] std::optional<OverBodyLimit> check_body_limit(const Options& options,
                                                            std::uint64_t declared_size) noexcept;

/// The HTTP 413 body: {"reason":"max_body","message":...,"declared_size":N,"max_body":M}.
[[nodiscard]] std::string over_body_limit_json(const OverBodyLimit& over);

/// The WebSocket close: 1009 (message too big) with
/// "max_body: declared N bytes, the limit is M bytes" (within 123 bytes).
[[nodiscard]] WebSocketRefusal over_body_limit_close(const OverBodyLimit& over);

}  // namespace upload_server
