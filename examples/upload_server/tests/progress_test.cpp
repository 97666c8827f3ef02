// Tests for progress.hpp: the data deadline of an upload. Real timers on a
// real io_context, with short timeouts; only the order of events is checked
// (a timer never fires early), with generous upper bounds, never a speed.
#include "progress.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "catch.hpp"

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using upload_server::ProgressWatch;
using Clock = ProgressWatch::Clock;

// Calls `feed` every `every` until `until` (a time), on `io`.
class Feeder {
 public:
  Feeder(net::io_context& io, std::chrono::milliseconds every, Clock::time_point until,
         std::function<void()> feed)
      : timer_{io}, every_{every}, until_{until}, feed_{std::move(feed)} {
    schedule();
  }
  void stop() { timer_.cancel(); }

 private:
  void schedule() {
    timer_.expires_after(every_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || Clock::now() >= until_) return;
      feed_();
      schedule();
    });
  }
  net::steady_timer timer_;
  std::chrono::milliseconds every_;
  Clock::time_point until_;
  std::function<void()> feed_;
};

struct Late {
  std::optional<std::string> reason;
  Clock::time_point at{};
};

// Runs `io` until the watch reports or `limit` passes.
void run_for(net::io_context& io, std::chrono::milliseconds limit) {
  io.run_for(limit);
  io.restart();
}

}  // namespace

TEST_CASE("an upload that keeps sending data is never late; one that stops is, after the timeout",
          "[progress]") {
  net::io_context io;
  Late late;
  Clock::time_point last_data = Clock::now();
  ProgressWatch watch{io.get_executor(), {.body_timeout = 200ms}, [&](std::string why) {
                        late = {std::move(why), Clock::now()};
                        io.stop();
                      }};
  const auto feeding_ends = Clock::now() + 600ms;
  Feeder feeder{io, 20ms, feeding_ends, [&] {
                  watch.data(100);
                  last_data = Clock::now();
                }};
  run_for(io, 5s);
  REQUIRE(late.reason.has_value());
  CHECK(*late.reason == "no data for 200 ms");
  CHECK(watch.late());
  // Three timeouts' worth of data kept it alive; then it was late a full
  // timeout after the last data, never before.
  CHECK(late.at >= feeding_ends);
  CHECK(late.at - last_data >= 200ms);
}

TEST_CASE("pings are not data: data(0) does not keep an upload alive", "[progress]") {
  net::io_context io;
  Late late;
  const auto started = Clock::now();
  ProgressWatch watch{io.get_executor(), {.body_timeout = 150ms}, [&](std::string why) {
                        late = {std::move(why), Clock::now()};
                        io.stop();
                      }};
  Feeder pinger{io, 10ms, Clock::now() + 10s, [&] { watch.data(0); }};
  run_for(io, 5s);
  REQUIRE(late.reason.has_value());
  CHECK(*late.reason == "no data for 150 ms");
  CHECK(late.at - started >= 150ms);
}

TEST_CASE("with a minimum rate, a slow drip is late although data keeps coming", "[progress]") {
  net::io_context io;
  Late late;
  const auto started = Clock::now();
  ProgressWatch watch{io.get_executor(),
                      {.body_timeout = 200ms, .min_rate = 1024 * 1024},  // 1 MiB/s
                      [&](std::string why) {
                        late = {std::move(why), Clock::now()};
                        io.stop();
                      }};
  Feeder drip{io, 10ms, Clock::now() + 10s, [&] { watch.data(10); }};  // ~1 KB/s
  run_for(io, 5s);
  REQUIRE(late.reason.has_value());
  CHECK(late.reason->find("below the minimum of 1 MiB/s") != std::string::npos);
  CHECK(late.at - started >= 200ms);  // judged over a whole interval
}

TEST_CASE("an upload at the minimum rate is not late", "[progress]") {
  net::io_context io;
  bool late = false;
  ProgressWatch watch{io.get_executor(),
                      {.body_timeout = 100ms, .min_rate = 10'000},
                      [&](std::string) { late = true; }};
  // 1,000 bytes every 10 ms is 100,000 bytes/s: ten times the minimum.
  Feeder feeder{io, 10ms, Clock::now() + 10s, [&] { watch.data(1'000); }};
  run_for(io, 700ms);
  CHECK_FALSE(late);
  CHECK_FALSE(watch.late());
}

TEST_CASE("after stop(), and after destruction, the watch never calls back", "[progress]") {
  net::io_context io;
  int calls = 0;
  {
    ProgressWatch stopped{io.get_executor(), {.body_timeout = 50ms}, [&](std::string) { ++calls; }};
    stopped.stop();
    stopped.stop();  // idempotent
    ProgressWatch destroyed{
        io.get_executor(), {.body_timeout = 50ms}, [&](std::string) { ++calls; }};
  }
  run_for(io, 300ms);
  CHECK(calls == 0);
}
