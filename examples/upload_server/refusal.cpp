#include "refusal.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <utility>

namespace upload_server {

namespace {

// ordered_json: "reason" first, as a person reading the close reason expects.
using Ordered = nlohmann::ordered_json;

struct Figure {
  const char* name;
  std::uint64_t value;
};

// `head` and then each of `figures` that still fits a close frame, in order.
std::string close_reason(Ordered head, std::initializer_list<Figure> figures) {
  std::string text = head.dump();
  for (const Figure& figure : figures) {
    head[figure.name] = figure.value;
    std::string longer = head.dump();
    if (longer.size() > max_close_reason) {
      head.erase(figure.name);
      continue;
    }
    text = std::move(longer);
  }
  return text;
}

Ordered reason_and_delay(std::string_view reason, std::chrono::milliseconds retry) {
  Ordered head = Ordered::object();
  head["reason"] = reason;
  head["retry_after_ms"] = retry.count();
  return head;
}

}  // namespace

unsigned retry_after_seconds(std::chrono::milliseconds delay) {
  const auto seconds = (delay.count() + 999) / 1000;
  return seconds < 1 ? 1U : static_cast<unsigned>(seconds);
}

std::string refusal_json(const admit::Rejection& rejection, RetryAfter retry) {
  nlohmann::json body = {
      {"reason", admit::to_string(rejection.reason)}, {"message", fmt::format("{}", rejection)},
      {"declared_size", rejection.declared_size},     {"needed_bytes", rejection.needed_bytes},
      {"available_bytes", rejection.available_bytes}, {"memory_budget", rejection.memory_budget},
      {"slots_in_use", rejection.slots_in_use},       {"slots", rejection.slots},
  };
  if (retry) body["retry_after_ms"] = retry->count();
  // Only when a partition's ceiling refused it: the figures are then the
  // partition's, and a body without "limit" reads as before (the pool's).
  if (rejection.limit == admit::Limit::partition) body["limit"] = admit::to_string(rejection.limit);
  return body.dump();
}

HttpRefusal http_refusal(const admit::Rejection& rejection, RetryAfter retry) {
  if (admit::is_permanent(rejection.reason)) {
    return {413, 0, refusal_json(rejection, std::nullopt)};  // retrying cannot help
  }
  return {503, retry ? retry_after_seconds(*retry) : 0U, refusal_json(rejection, retry)};
}

WebSocketRefusal websocket_refusal(const admit::Rejection& rejection, RetryAfter retry) {
  const auto reason = admit::to_string(rejection.reason);
  const Figure needed{"needed_bytes", rejection.needed_bytes};
  const Figure available{"available_bytes", rejection.available_bytes};
  const Figure budget{"memory_budget", rejection.memory_budget};
  const Figure in_use{"slots_in_use", rejection.slots_in_use};
  const Figure slots{"slots", rejection.slots};
  // "limit":"partition" right after the reason and the delay, before any
  // figure: it says whose figures follow, and it always fits (the longest
  // head is well under 123 bytes).
  const auto mark_limit = [&](Ordered& head) {
    if (rejection.limit == admit::Limit::partition) {
      head["limit"] = admit::to_string(rejection.limit);
    }
  };
  if (admit::is_permanent(rejection.reason)) {
    Ordered head = Ordered::object();
    head["reason"] = reason;
    mark_limit(head);
    return {close_too_big, close_reason(std::move(head), {needed, budget})};
  }
  // A transient refusal without a delay would be the server's bug; 1 s is
  // what the server answered before it estimated one.
  Ordered head = reason_and_delay(reason, retry.value_or(std::chrono::seconds{1}));
  mark_limit(head);
  std::string text;
  switch (rejection.reason) {
    case admit::Reason::no_slot:
    case admit::Reason::queue_full:
      text = close_reason(std::move(head), {in_use, slots});
      break;
    case admit::Reason::pressure:
    case admit::Reason::closed:
      text = close_reason(std::move(head), {});
      break;
    default:  // no_memory, timeout, cancelled: what was needed and what was free
      text = close_reason(std::move(head), {needed, available, budget});
      break;
  }
  // 1001 "Going Away" for a server shutting down (RFC 6455 7.4.1); 1013 "Try
  // Again Later" (IANA's WebSocket close code registry) for the rest.
  return {rejection.reason == admit::Reason::closed ? std::uint16_t{1001} : std::uint16_t{1013},
          std::move(text)};
}

WebSocketRefusal out_of_memory_close(std::uint64_t bytes, std::chrono::milliseconds retry) {
  return {1013, close_reason(reason_and_delay("out_of_memory", retry), {{"needed_bytes", bytes}})};
}

WebSocketRefusal shutdown_close(std::chrono::milliseconds retry) {
  return {1001, close_reason(reason_and_delay("closed", retry), {})};
}

}  // namespace upload_server
