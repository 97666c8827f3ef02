// Tests for admit/rejection.hpp: reasons, their names and permanence.
#include <admit/rejection.hpp>

#include <set>
#include <string_view>

#include "catch.hpp"

namespace {
constexpr admit::Reason all_reasons[] = {admit::Reason::too_large, admit::Reason::no_slot,
                                         admit::Reason::no_memory, admit::Reason::queue_full,
                                         admit::Reason::timeout,   admit::Reason::cancelled,
                                         admit::Reason::closed,    admit::Reason::pressure};
}

TEST_CASE("only too_large is permanent", "[rejection]") {
  STATIC_REQUIRE(admit::is_permanent(admit::Reason::too_large));
  STATIC_REQUIRE(std::size(all_reasons) == admit::reason_count);
  for (const admit::Reason reason : all_reasons) {
    CAPTURE(admit::to_string(reason));
    CHECK(admit::is_permanent(reason) == (reason == admit::Reason::too_large));
  }
}

TEST_CASE("to_string gives each reason its enumerator's name", "[rejection]") {
  STATIC_REQUIRE(admit::to_string(admit::Reason::too_large) == "too_large");
  CHECK(admit::to_string(admit::Reason::no_slot) == "no_slot");
  CHECK(admit::to_string(admit::Reason::no_memory) == "no_memory");
  CHECK(admit::to_string(admit::Reason::queue_full) == "queue_full");
  CHECK(admit::to_string(admit::Reason::timeout) == "timeout");
  CHECK(admit::to_string(admit::Reason::cancelled) == "cancelled");
  CHECK(admit::to_string(admit::Reason::closed) == "closed");
  CHECK(admit::to_string(admit::Reason::pressure) == "pressure");
  std::set<std::string_view> names;
  for (const admit::Reason reason : all_reasons) names.insert(admit::to_string(reason));
  CHECK(names.size() == admit::reason_count);
  CHECK(admit::to_string(static_cast<admit::Reason>(200)) == "unknown");
}

TEST_CASE("rejections compare by every figure", "[rejection]") {
  const admit::Rejection a{admit::Reason::no_memory, 10, 2, 1, 200, 3, 8};
  admit::Rejection b = a;
  CHECK(a == b);
  b.available_bytes = 0;
  CHECK_FALSE(a == b);
}
