// Tests for upload_request.hpp: the first message of a WebSocket upload, what
// it may and may not be. A refused request is closed with 1008 by the
// session, so every refusal here is one a client gets told about.
#include "upload_request.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "catch.hpp"

using upload_server::parse_upload_request;
using upload_server::UploadRequest;

namespace {

bool refused(std::string_view text) { return !parse_upload_request(text).has_value(); }

}  // namespace

TEST_CASE("an upload request is an object with a string name and an unsigned size",
          "[upload_request]") {
  const std::optional<UploadRequest> request =
      parse_upload_request(R"({"name": "report.zip", "size": 2530644380})");
  REQUIRE(request);
  CHECK(request->name == "report.zip");
  CHECK(request->size == 2530644380U);

  // Member order, whitespace and other members do not matter.
  const std::optional<UploadRequest> reordered =
      parse_upload_request(" \r\n\t{\"size\":0,\"sha256\":null,\"name\":\"a\"}\n");
  REQUIRE(reordered);
  CHECK(reordered->name == "a");
  CHECK(reordered->size == 0);

  // The largest size that fits, and escapes decoded into the UTF-8 name.
  const std::optional<UploadRequest> largest =
      parse_upload_request(R"({"name": "caf\u00e9\/x\"y", "size": 18446744073709551615})");
  REQUIRE(largest);
  CHECK(largest->name == "caf\xc3\xa9/x\"y");
  CHECK(largest->size == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("an empty name is a request: sanitize_file_name names it", "[upload_request]") {
  const std::optional<UploadRequest> request = parse_upload_request(R"({"name": "", "size": 1})");
  REQUIRE(request);
  CHECK(request->name.empty());
}

TEST_CASE("a repeated member counts with its last value", "[upload_request]") {
  const std::optional<UploadRequest> request =
      parse_upload_request(R"({"name": "a", "size": 1, "name": "b", "size": 2})");
  REQUIRE(request);
  CHECK(request->name == "b");
  CHECK(request->size == 2);
  // The last one decides even when an earlier one would have been acceptable.
  CHECK(refused(R"({"name": "a", "size": 1, "size": "2"})"));
}

TEST_CASE("a request without a string name is refused", "[upload_request][errors]") {
  CHECK(refused(R"({"size": 1})"));
  CHECK(refused(R"({"Name": "a", "size": 1})"));  // member names are case-sensitive
  CHECK(refused(R"({"name": null, "size": 1})"));
  CHECK(refused(R"({"name": 7, "size": 1})"));
  CHECK(refused(R"({"name": ["a"], "size": 1})"));
}

TEST_CASE("a size that is not a non-negative 64-bit integer is refused",
          "[upload_request][errors]") {
  CHECK(refused(R"({"name": "a"})"));
  CHECK(refused(R"({"name": "a", "size": "10"})"));
  CHECK(refused(R"({"name": "a", "size": 1.5})"));
  CHECK(refused(R"({"name": "a", "size": 1.0})"));  // integral, but not an integer in JSON
  CHECK(refused(R"({"name": "a", "size": 1e3})"));
  CHECK(refused(R"({"name": "a", "size": -1})"));
  CHECK(refused(R"({"name": "a", "size": -0})"));
  CHECK(refused(R"({"name": "a", "size": true})"));
  CHECK(refused(R"({"name": "a", "size": 18446744073709551616})"));  // 2^64
  CHECK(refused(R"({"name": "a", "size": 99999999999999999999999})"));
}

TEST_CASE("anything but one JSON object is refused", "[upload_request][errors]") {
  CHECK(refused(""));
  CHECK(refused("   "));
  CHECK(refused("null"));
  CHECK(refused(R"("report.zip")"));
  CHECK(refused(R"([{"name": "a", "size": 1}])"));
  CHECK(refused("report.zip 100"));
  CHECK(refused(R"({"name": "a", "size": 1)"));                            // cut short
  CHECK(refused(R"({"name": "a", "size": 1} {"name": "b", "size": 2})"));  // two values
  CHECK(refused(R"({"name": "a", "size": 1}x)"));                          // trailing garbage
  CHECK(refused(R"({'name': 'a', 'size': 1})"));
  CHECK(refused(R"({"name": "a", "size": 1, })"));  // a trailing comma
  CHECK(refused(R"({"name": "a", /* c */ "size": 1})"));

  std::string raw_control = R"({"name": "a)";
  raw_control += '\0';  // control characters must be escaped in a JSON string
  raw_control += R"(", "size": 1})";
  CHECK(refused(raw_control));
}

TEST_CASE("a name that is not UTF-8 is refused", "[upload_request][errors]") {
  CHECK(refused("{\"name\": \"\xff\", \"size\": 1}"));
  CHECK(refused("{\"name\": \"a\xc3\", \"size\": 1}"));            // cut short
  CHECK(refused(R"({"name": "\ud800", "size": 1})"));              // a lone surrogate
  CHECK_FALSE(refused(R"({"name": "\ud83d\udce6", "size": 1})"));  // a pair: U+1F4E6
}
