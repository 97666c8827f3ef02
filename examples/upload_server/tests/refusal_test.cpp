// Tests for refusal.hpp: every refusal maps to the documented HTTP status and
// WebSocket close code, with the figures a client needs, within the limits of
// each protocol.
#include "refusal.hpp"

#include <admit/units.hpp>
#include <nlohmann/json.hpp>

#include "catch.hpp"

using admit::MiB;
using admit::Reason;
using admit::Rejection;
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
  const auto http = http_refusal(refusal(Reason::too_large));
  CHECK(http.status == 413);
  CHECK(http.retry_after == 0);  // retrying cannot help

  const auto ws = websocket_refusal(refusal(Reason::too_large));
  CHECK(ws.close_code == 1009);
  CHECK(ws.reason == "too_large: needs 253064438 bytes, budget 209715200 bytes");
}

TEST_CASE(
    "every transient reason is 503 with Retry-After, and a WebSocket close that invites a retry",
    "[refusal]") {
  const Reason reason =
      GENERATE(Reason::no_slot, Reason::no_memory, Reason::queue_full, Reason::timeout,
               Reason::cancelled, Reason::closed, Reason::pressure);
  CAPTURE(admit::to_string(reason));
  const auto http = http_refusal(refusal(reason));
  CHECK(http.status == 503);
  CHECK(http.retry_after >= 1);

  const auto ws = websocket_refusal(refusal(reason));
  CHECK(ws.close_code == (reason == Reason::closed ? 1001 : 1013));  // 1001: going away
  CHECK(ws.reason.starts_with(admit::to_string(reason)));
  CHECK(ws.reason.size() <= upload_server::max_close_reason);
}

TEST_CASE("the JSON body carries the reason and every figure", "[refusal]") {
  const Rejection rejection = refusal(Reason::no_memory);
  const auto body = nlohmann::json::parse(http_refusal(rejection).body);
  CHECK(body.at("reason") == "no_memory");
  CHECK(body.at("declared_size") == rejection.declared_size);
  CHECK(body.at("needed_bytes") == rejection.needed_bytes);
  CHECK(body.at("available_bytes") == rejection.available_bytes);
  CHECK(body.at("memory_budget") == rejection.memory_budget);
  CHECK(body.at("slots_in_use") == rejection.slots_in_use);
  CHECK(body.at("slots") == rejection.slots);
  CHECK(body.at("message") ==
        "upload of 2.36 GiB needs 241 MiB, 37 MiB free of 200 MiB, retry later");
}

TEST_CASE("a close reason never exceeds 123 bytes, even with the largest figures", "[refusal]") {
  const std::uint64_t huge = UINT64_MAX;
  const Reason reason = GENERATE(Reason::too_large, Reason::no_memory, Reason::no_slot);
  const Rejection rejection{reason, huge, huge, huge, huge, UINT32_MAX, UINT32_MAX};
  CHECK(websocket_refusal(rejection).reason.size() <= upload_server::max_close_reason);
}

TEST_CASE("a part the process cannot allocate is close 1013, inviting a retry", "[refusal]") {
  const auto ws = upload_server::out_of_memory_close(20 * MiB);
  CHECK(ws.close_code == 1013);
  CHECK(ws.reason == "out_of_memory: cannot allocate 20971520 bytes for the upload, retry later");
  CHECK(upload_server::out_of_memory_close(UINT64_MAX).reason.size() <=
        upload_server::max_close_reason);
}
