#include "refusal.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>
#include <nlohmann/json.hpp>

namespace upload_server {

// Long enough for a client to see the effect of others finishing, short
// enough not to idle. A closing server is not coming back soon.
unsigned retry_after_seconds(admit::Reason reason) {
  return reason == admit::Reason::closed ? 30 : 1;
}

std::string refusal_json(const admit::Rejection& rejection) {
  const nlohmann::json body = {
      {"reason", admit::to_string(rejection.reason)}, {"message", fmt::format("{}", rejection)},
      {"declared_size", rejection.declared_size},     {"needed_bytes", rejection.needed_bytes},
      {"available_bytes", rejection.available_bytes}, {"memory_budget", rejection.memory_budget},
      {"slots_in_use", rejection.slots_in_use},       {"slots", rejection.slots},
  };
  return body.dump();
}

HttpRefusal http_refusal(const admit::Rejection& rejection) {
  if (admit::is_permanent(rejection.reason)) {
    return {413, 0, refusal_json(rejection)};
  }
  return {503, retry_after_seconds(rejection.reason), refusal_json(rejection)};
}

WebSocketRefusal websocket_refusal(const admit::Rejection& rejection) {
  const auto reason = admit::to_string(rejection.reason);
  std::string text;
  if (admit::is_permanent(rejection.reason)) {
    text = fmt::format("{}: needs {} bytes, budget {} bytes", reason, rejection.needed_bytes,
                       rejection.memory_budget);
    return {close_too_big, std::move(text)};
  }
  if (rejection.reason == admit::Reason::no_slot) {
    text = fmt::format("{}: all {} slots in use, retry later", reason, rejection.slots);
  } else if (rejection.reason == admit::Reason::pressure) {
    text = fmt::format("{}: the server is short of memory, retry later", reason);
  } else {
    text = fmt::format("{}: needs {} bytes, {} free of {}, retry later", reason,
                       rejection.needed_bytes, rejection.available_bytes, rejection.memory_budget);
  }
  // 1001 "Going Away" for a server shutting down (RFC 6455 7.4.1); 1013 "Try
  // Again Later" (IANA's WebSocket close code registry) for the rest.
  return {rejection.reason == admit::Reason::closed ? std::uint16_t{1001} : std::uint16_t{1013},
          std::move(text)};
}

WebSocketRefusal out_of_memory_close(std::uint64_t bytes) {
  return {1013, fmt::format("out_of_memory: cannot allocate {} bytes for the upload, retry later",
                            bytes)};
}

}  // namespace upload_server
