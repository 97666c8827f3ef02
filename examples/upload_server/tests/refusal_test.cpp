// Tests for refusal.hpp: every refusal maps to the documented HTTP status and
// WebSocket close code, with the figures a client needs and when to come
// back, within the limits of each protocol.
#include "refusal.hpp"

#include <admit/units.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>

#include "catch.hpp"

using admit::MiB;
using admit::Reason;
using admit::Rejection;
using std::chrono::milliseconds;
using upload_server::http_refusal;
using upload_server::websocket_refusal;

namespace {

Rejection refusal(Reason reason) {
  // The 2.36 GiB upload under flat 10 %, in a 200 MiB pool with 2 of 16 slots taken.
  return Rejection{.reason = reason,
                   .declared_size = 2'530'644'380,
                   .needed_bytes = 253'064'438,
                   .available_bytes = 37 * MiB,
                   .memory_budget = 200 * MiB,
                   .slots_in_use = 2,
                   .slots = 16};
}

}  // namespace

TEST_CASE("too_large is 413 and close 1009, naming the need and the budget", "[refusal]") {
  const auto http = http_refusal(refusal(Reason::too_large), std::nullopt);
  CHECK(http.status == 413);
  CHECK(http.retry_after == 0);  // retrying cannot help
  CHECK_FALSE(nlohmann::json::parse(http.body).contains("retry_after_ms"));

  const auto ws = websocket_refusal(refusal(Reason::too_large), std::nullopt);
  CHECK(ws.close_code == 1009);
  CHECK(ws.reason ==
        R"({"reason":"too_large","needed_bytes":253064438,"memory_budget":209715200})");
}

TEST_CASE(
    "every transient reason is 503 with Retry-After, and a WebSocket close that invites a retry",
    "[refusal]") {
  const Reason reason =
      GENERATE(Reason::no_slot, Reason::no_memory, Reason::queue_full, Reason::timeout,
               Reason::cancelled, Reason::closed, Reason::pressure);
  CAPTURE(admit::to_string(reason));
  const auto http = http_refusal(refusal(reason), milliseconds{2400});
  CHECK(http.status == 503);
  CHECK(http.retry_after == 3);  // the ceiling of 2.4 s
  CHECK(nlohmann::json::parse(http.body).at("retry_after_ms") == 2400);

  const auto ws = websocket_refusal(refusal(reason), milliseconds{2400});
  CHECK(ws.close_code == (reason == Reason::closed ? 1001 : 1013));  // 1001: going away
  CHECK(ws.reason.size() <= upload_server::max_close_reason);
  const auto close = nlohmann::json::parse(ws.reason);
  CHECK(close.at("reason") == admit::to_string(reason));
  CHECK(close.at("retry_after_ms") == 2400);
}

TEST_CASE("a close reason names the figures that explain its reason", "[refusal]") {
  CHECK(websocket_refusal(refusal(Reason::no_memory), milliseconds{2400}).reason ==
        R"({"reason":"no_memory","retry_after_ms":2400,"needed_bytes":253064438,)"
        R"("available_bytes":38797312,"memory_budget":209715200})");
  CHECK(websocket_refusal(refusal(Reason::no_slot), milliseconds{3000}).reason ==
        R"({"reason":"no_slot","retry_after_ms":3000,"slots_in_use":2,"slots":16})");
  CHECK(websocket_refusal(refusal(Reason::pressure), milliseconds{5000}).reason ==
        R"({"reason":"pressure","retry_after_ms":5000})");
  CHECK(websocket_refusal(refusal(Reason::closed), milliseconds{10000}).reason ==
        R"({"reason":"closed","retry_after_ms":10000})");
}

TEST_CASE("Retry-After is the delay's ceiling in whole seconds, never 0", "[refusal]") {
  using upload_server::retry_after_seconds;
  CHECK(retry_after_seconds(milliseconds{1}) == 1);
  CHECK(retry_after_seconds(milliseconds{800}) == 1);
  CHECK(retry_after_seconds(milliseconds{1000}) == 1);
  CHECK(retry_after_seconds(milliseconds{1001}) == 2);
  CHECK(retry_after_seconds(milliseconds{59'999}) == 60);
  CHECK(retry_after_seconds(milliseconds{0}) == 1);
}

TEST_CASE("the JSON body carries the reason, every figure and the delay", "[refusal]") {
  const Rejection rejection = refusal(Reason::no_memory);
  const auto body = nlohmann::json::parse(http_refusal(rejection, milliseconds{2400}).body);
  CHECK(body.at("reason") == "no_memory");
  CHECK(body.at("declared_size") == rejection.declared_size);
  CHECK(body.at("needed_bytes") == rejection.needed_bytes);
  CHECK(body.at("available_bytes") == rejection.available_bytes);
  CHECK(body.at("memory_budget") == rejection.memory_budget);
  CHECK(body.at("slots_in_use") == rejection.slots_in_use);
  CHECK(body.at("slots") == rejection.slots);
  CHECK(body.at("retry_after_ms") == 2400);
  CHECK(body.at("message") ==
        "upload of 2.36 GiB needs 241 MiB, 37 MiB free of 200 MiB, retry later");
}

TEST_CASE("a close reason never exceeds 123 bytes, even with the largest figures", "[refusal]") {
  const std::uint64_t huge = UINT64_MAX;
  const Reason reason = GENERATE(Reason::too_large, Reason::no_memory, Reason::no_slot,
                                 Reason::queue_full, Reason::timeout, Reason::cancelled);
  CAPTURE(admit::to_string(reason));
  const Rejection rejection{reason, huge, huge, huge, huge, UINT32_MAX, UINT32_MAX};
  // The longest delay a millisecond count can say.
  const auto ws = websocket_refusal(rejection, milliseconds{INT64_MAX});
  CHECK(ws.reason.size() <= upload_server::max_close_reason);
  const auto close = nlohmann::json::parse(ws.reason);  // whole: figures left out, never cut
  CHECK(close.at("reason") == admit::to_string(reason));
  CHECK(close.contains("retry_after_ms") == !admit::is_permanent(reason));
  // The reason, the delay (transient) and at least one figure always fit.
  CHECK(close.size() >= 3);
}

TEST_CASE("a figure that does not fit is left out, and the rest still parse", "[refusal]") {
  // A 100 GiB budget: 12-digit byte counts, a 60 s delay (RetryConfig::max).
  const std::uint64_t big = 100 * admit::GiB;
  const Rejection cancelled{Reason::cancelled, big, big, big - 1, big, 65535, 65535};
  const auto ws = websocket_refusal(cancelled, milliseconds{60'000});
  CAPTURE(ws.reason);
  CHECK(ws.reason.size() <= upload_server::max_close_reason);
  const auto close = nlohmann::json::parse(ws.reason);
  CHECK(close.at("needed_bytes") == big);
  CHECK(close.at("available_bytes") == big - 1);
  CHECK_FALSE(close.contains("memory_budget"));
}

TEST_CASE("a part the process cannot allocate is close 1013, inviting a retry", "[refusal]") {
  const auto ws = upload_server::out_of_memory_close(20 * MiB, milliseconds{1200});
  CHECK(ws.close_code == 1013);
  CHECK(ws.reason == R"({"reason":"out_of_memory","retry_after_ms":1200,"needed_bytes":20971520})");
  CHECK(upload_server::out_of_memory_close(UINT64_MAX, milliseconds{INT64_MAX}).reason.size() <=
        upload_server::max_close_reason);
}

TEST_CASE("an upload cut off by the shutdown is told 1001 and when to come back", "[refusal]") {
  const auto ws = upload_server::shutdown_close(milliseconds{9500});
  CHECK(ws.close_code == 1001);
  CHECK(ws.reason == R"({"reason":"closed","retry_after_ms":9500})");
}

TEST_CASE("a partition's refusal says limit partition, over HTTP and in a close reason",
          "[refusal][tenants]") {
  Rejection rejection = refusal(Reason::no_memory);
  // Without limit partition, nothing changes (the pool's figures).
  CHECK_FALSE(nlohmann::json::parse(http_refusal(rejection, milliseconds{2400}).body)
                  .contains("limit"));
  CHECK_FALSE(nlohmann::json::parse(websocket_refusal(rejection, milliseconds{2400}).reason)
                  .contains("limit"));

  rejection.limit = admit::Limit::partition;
  const auto http = http_refusal(rejection, milliseconds{2400});
  CHECK(http.status == 503);  // still transient: the partition's uploads end too
  CHECK(nlohmann::json::parse(http.body).at("limit") == "partition");
  const auto ws = websocket_refusal(rejection, milliseconds{2400});
  CHECK(ws.close_code == 1013);
  const auto close = nlohmann::json::parse(ws.reason);
  CHECK(close.at("limit") == "partition");
  CHECK(close.contains("needed_bytes"));

  // The largest figures still fit 123 bytes with the limit, too_large included.
  const Reason reason = GENERATE(Reason::too_large, Reason::no_memory, Reason::no_slot);
  const std::uint64_t huge = UINT64_MAX;
  Rejection big{reason, huge, huge, huge, huge, UINT32_MAX, UINT32_MAX};
  big.limit = admit::Limit::partition;
  const auto longest = websocket_refusal(big, milliseconds{INT64_MAX});
  CHECK(longest.reason.size() <= upload_server::max_close_reason);
  CHECK(nlohmann::json::parse(longest.reason).at("limit") == "partition");
}
