// Tests for live_uploads.hpp: an upload is in the table while its
// registration lives, with the figures its watch counted.
#include "live_uploads.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

#include "catch.hpp"

namespace {

using namespace std::chrono_literals;
using upload_server::LiveUploads;
using upload_server::ProgressWatch;

nlohmann::json uploads(const LiveUploads& table, LiveUploads::Clock::time_point now) {
  return nlohmann::json::parse(table.json(now)).at("uploads");
}

}  // namespace

TEST_CASE("an upload is listed from its registration to its end, with what it said",
          "[live_uploads]") {
  LiveUploads table;
  const auto admitted = LiveUploads::Clock::now();
  CHECK(uploads(table, admitted).empty());
  {
    auto first = table.add({.protocol = "ws",
                            .number = 17,
                            .name = "big.zip",
                            .declared_size = 200,
                            .reserved_bytes = 40,
                            .buffer_bytes = 0,
                            .admitted = admitted});
    auto second = table.add({.protocol = "http", .number = 3, .name = "", .admitted = admitted});
    second.entry().name = "form.bin";  // a multipart body names its file later
    CHECK(table.size() == 2);
    const auto listed = uploads(table, admitted + 1500ms);
    REQUIRE(listed.size() == 2);
    CHECK(listed[0]["id"] == "ws#17");
    CHECK(listed[0]["protocol"] == "ws");
    CHECK(listed[0]["name"] == "big.zip");
    CHECK(listed[0]["declared_size"] == 200);
    CHECK(listed[0]["reserved_bytes"] == 40);
    CHECK(listed[0]["buffer_bytes"] == 0);
    CHECK(listed[0]["received_bytes"] == 0);  // no body yet
    CHECK(listed[0]["rate_bytes_per_second"] == 0);
    CHECK(listed[0]["age_seconds"] == 1.5);
    CHECK(listed[1]["id"] == "http#3");
    CHECK(listed[1]["name"] == "form.bin");
  }
  CHECK(table.size() == 0);
  CHECK(uploads(table, admitted).empty());
}

TEST_CASE("received bytes come from the watch, and stay once it is detached", "[live_uploads]") {
  boost::asio::io_context io;
  LiveUploads table;
  auto registration = table.add({.protocol = "http", .number = 1, .name = "a.bin"});
  {
    ProgressWatch watch{io.get_executor(), {.body_timeout = 10s}, [](std::string) {}};
    registration.watch(watch);
    watch.data(1000);
    watch.data(0);  // a ping: no data
    watch.data(24);
    const auto now = watch.started() + 2s;
    const auto listed = uploads(table, now);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["received_bytes"] == 1024);
    CHECK(listed[0]["rate_bytes_per_second"] == 512);
    registration.unwatch();
    registration.unwatch();  // idempotent
  }
  // The watch is gone; its figures are not.
  const auto listed = uploads(table, LiveUploads::Clock::now());
  CHECK(listed[0]["received_bytes"] == 1024);
}
