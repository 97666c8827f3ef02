// Tests for connection_limits.hpp: which connections are refused at accept,
// which are shed (longest-waiting first) and that every count comes back when
// connections close. No network: handles are plain integers and the close
// function records what it was asked to close.
#include "connection_limits.hpp"

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"

namespace {

using namespace std::chrono_literals;
using upload_server::AcceptBackoff;
using upload_server::Connection;
using upload_server::ConnectionLimits;
using upload_server::ConnectionPhase;
using upload_server::ConnectionRefusal;
using upload_server::ConnectionRegistry;
using Clock = ConnectionRegistry::Clock;

// A registry whose close function records the handles it is asked to close.
struct Fixture {
  explicit Fixture(ConnectionLimits limits)
      : registry{limits, [this](int handle) { closed.push_back(handle); }} {}

  // Opens `handle` from `peer`, `seconds` after t0; the connection must be admitted.
  Connection open(int handle, std::string_view peer = "10.0.0.1", int seconds = 0) {
    auto opened = registry.open(handle, peer, false, t0 + std::chrono::seconds{seconds});
    REQUIRE(opened.refusal == ConnectionRefusal::none);
    return std::move(opened.connection);
  }

  std::vector<int> closed;
  ConnectionRegistry registry;
  Clock::time_point t0 = Clock::now();
};

}  // namespace

TEST_CASE("the default --max-connections is RLIMIT_NOFILE minus 48 and 2 per slot") {
  using upload_server::default_max_connections;
  using upload_server::descriptor_reserve;
  CHECK(descriptor_reserve(16) == 48 + 32);
  CHECK(default_max_connections(1024, 16) == 1024u - 80u);
  CHECK(default_max_connections(256, 16) == 176u);
  CHECK(default_max_connections(256, 4) == 256u - 56u);
  // Fewer than 16 left for connections: no default, the server refuses to start.
  CHECK(default_max_connections(95, 16) == std::nullopt);
  CHECK(default_max_connections(96, 16) == 16u);
  // An unlimited or huge descriptor limit: capped.
  CHECK(default_max_connections(1u << 20, 16) == upload_server::max_default_connections);
  CHECK(default_max_connections(~std::uint64_t{0}, 16) == upload_server::max_default_connections);
  CHECK(upload_server::descriptor_spare(16) == 48);
}

TEST_CASE("connections are admitted up to the cap and counted by phase") {
  Fixture f{{.max_connections = 3}};
  Connection a = f.open(10);
  Connection b = f.open(11);
  CHECK(a.number() == 1);
  CHECK(b.number() == 2);
  CHECK(a.phase() == ConnectionPhase::waiting);
  {
    const Connection::Busy busy = b.busy();
    CHECK(b.phase() == ConnectionPhase::in_request);
    const auto s = f.registry.stats();
    CHECK(s.open == 2);
    CHECK(s.waiting == 1);
    CHECK(s.in_request == 1);
    CHECK(s.accepted_total == 2);
  }
  CHECK(b.phase() == ConnectionPhase::waiting);
  CHECK(f.registry.stats().waiting == 2);
  CHECK(f.closed.empty());
}

TEST_CASE("at the cap the longest-waiting connection is shed, oldest first") {
  Fixture f{{.max_connections = 3}};
  Connection a = f.open(10, "10.0.0.1", 0);
  Connection b = f.open(11, "10.0.0.1", 1);
  Connection c = f.open(12, "10.0.0.1", 2);

  auto d = f.registry.open(13, "10.0.0.2", false, f.t0 + 3s);
  CHECK(d.refusal == ConnectionRefusal::none);
  CHECK(d.shed == 1);
  CHECK(f.closed == std::vector<int>{10});
  CHECK(a.shed());
  CHECK(a.phase() == ConnectionPhase::closing);
  auto s = f.registry.stats();
  CHECK(s.open == 4);  // a still holds its descriptor until its coroutine ends
  CHECK(s.closing == 1);
  CHECK(s.waiting == 3);
  CHECK(s.shed_total == 1);

  // A connection that waited again after a request is the newest waiting one:
  // b's request ends after c started waiting, so c goes before b.
  { const Connection::Busy busy = b.busy(); }
  auto e = f.registry.open(14, "10.0.0.2", false, f.t0 + 5s);
  CHECK(e.refusal == ConnectionRefusal::none);
  CHECK(f.closed == std::vector<int>{10, 12});
  CHECK(c.shed());
  CHECK_FALSE(b.shed());
}

TEST_CASE("busy connections are never shed: at the cap a newcomer is refused") {
  Fixture f{{.max_connections = 2}};
  Connection a = f.open(10);
  Connection b = f.open(11);
  const Connection::Busy busy_a = a.busy();
  const Connection::Busy busy_b = b.busy(ConnectionPhase::uploading);
  CHECK(b.phase() == ConnectionPhase::uploading);

  auto c = f.registry.open(12, "10.0.0.9", false);
  CHECK(c.refusal == ConnectionRefusal::max_connections);
  CHECK(c.shed == 0);
  CHECK(f.closed.empty());
  const auto s = f.registry.stats();
  CHECK(s.refused_max_connections_total == 1);
  CHECK(s.open == 2);
  CHECK(s.in_request == 1);
  CHECK(s.uploading == 1);
  CHECK(s.accepted_total == 2);
}

TEST_CASE("tokens nest; uploading wins over in_request") {
  Fixture f{{.max_connections = 2}};
  Connection a = f.open(10);
  {
    const Connection::Busy request = a.busy();
    {
      const Connection::Busy upload = a.busy(ConnectionPhase::uploading);
      CHECK(a.phase() == ConnectionPhase::uploading);
    }
    CHECK(a.phase() == ConnectionPhase::in_request);
  }
  CHECK(a.phase() == ConnectionPhase::waiting);
}

TEST_CASE("descriptors running short shed a waiting connection below the cap") {
  Fixture f{{.max_connections = 100}};
  Connection a = f.open(10);
  Connection b = f.open(11);
  auto c = f.registry.open(12, "10.0.0.1", /*descriptors_short=*/true);
  CHECK(c.refusal == ConnectionRefusal::none);
  CHECK(c.shed == 1);
  CHECK(f.closed == std::vector<int>{10});

  // Short of descriptors with nobody waiting: refused, so that its descriptor
  // comes back at once (an upload's file needs one) and accept() stays clear
  // of EMFILE.
  Fixture g{{.max_connections = 100}};
  Connection x = g.open(10);
  const Connection::Busy busy = x.busy();
  auto y = g.registry.open(11, "10.0.0.1", true);
  CHECK(y.refusal == ConnectionRefusal::descriptors);
  CHECK(y.shed == 0);
  CHECK(g.closed.empty());
  CHECK(g.registry.stats().refused_descriptors_total == 1);
  CHECK(g.registry.stats().refused_max_connections_total == 0);
  CHECK(g.registry.stats().open == 1);

  // Short, with the one waiting connection still closing (allowance 1): refused too.
  Fixture h{{.max_connections = 100, .closing_allowance = 1}};
  Connection p = h.open(10);
  Connection q = h.open(11);
  auto r = h.registry.open(12, "10.0.0.1", true);  // sheds p
  CHECK(r.shed == 1);
  auto s = h.registry.open(13, "10.0.0.1", true);  // p still closing: q is not shed
  CHECK(s.refusal == ConnectionRefusal::descriptors);
  CHECK(h.closed == std::vector<int>{10});
}

TEST_CASE("the per-address cap refuses the next connection from that address only") {
  Fixture f{{.max_connections = 100, .max_per_ip = 2}};
  Connection a = f.open(10, "10.0.0.1");
  Connection b = f.open(11, "10.0.0.1");
  auto third = f.registry.open(12, "10.0.0.1", false);
  CHECK(third.refusal == ConnectionRefusal::per_ip);
  CHECK(f.closed.empty());  // a per-address refusal sheds nobody
  Connection other = f.open(13, "10.0.0.2");
  CHECK(f.registry.stats().refused_per_ip_total == 1);

  // Closing one makes room for that address again.
  a = Connection{};
  Connection again = f.open(14, "10.0.0.1");
  // A shed connection no longer counts for its address.
  CHECK(f.registry.shed_waiting(1) == 1);
  CHECK(f.closed == std::vector<int>{11});
  Connection after_shed = f.open(15, "10.0.0.1");
  CHECK(f.registry.open(16, "10.0.0.1", false).refusal == ConnectionRefusal::per_ip);
}

TEST_CASE("every count comes back when connections close, in any phase") {
  Fixture f{{.max_connections = 4, .max_per_ip = 4}};
  {
    Connection a = f.open(10);
    Connection b = f.open(11);
    Connection c = f.open(12);
    Connection d = f.open(13);
    const Connection::Busy busy = b.busy();
    const Connection::Busy upload = c.busy(ConnectionPhase::uploading);
    CHECK(f.registry.shed_waiting(10) == 2);  // a and d: the waiting ones
    CHECK(f.closed == std::vector<int>{10, 13});
    const auto s = f.registry.stats();
    CHECK(s.open == 4);
    CHECK(s.closing == 2);
    // Tokens end before their connections, as in a session.
  }
  const auto s = f.registry.stats();
  CHECK(s.open == 0);
  CHECK(s.waiting == 0);
  CHECK(s.in_request == 0);
  CHECK(s.uploading == 0);
  CHECK(s.closing == 0);
  CHECK(s.accepted_total == 4);
  CHECK(s.shed_total == 2);
  // The address's count came back too: four more from it are admitted.
  std::vector<Connection> again;
  for (int handle = 20; handle < 24; ++handle) again.push_back(f.open(handle));
  CHECK(f.registry.stats().open == 4);
}

TEST_CASE("a busy connection that is shed stays closing, whatever its tokens do") {
  Fixture f{{.max_connections = 2}};
  Connection a = f.open(10);
  CHECK(f.registry.shed_waiting(1) == 1);
  {
    const Connection::Busy late = a.busy();  // the request completed as it was shed
    CHECK(a.phase() == ConnectionPhase::closing);
  }
  CHECK(a.phase() == ConnectionPhase::closing);
  CHECK(f.registry.shed_waiting(1) == 0);  // not shed (closed) twice
  CHECK(f.closed == std::vector<int>{10});
}

TEST_CASE("at most closing_allowance connections are closing; then newcomers are refused") {
  Fixture f{{.max_connections = 2, .closing_allowance = 1}};
  Connection a = f.open(10);
  Connection b = f.open(11);
  auto c = f.registry.open(12, "10.0.0.1", false);  // sheds a
  CHECK(c.refusal == ConnectionRefusal::none);
  CHECK(f.closed == std::vector<int>{10});
  auto d = f.registry.open(13, "10.0.0.1", false);  // a is still closing: none shed
  CHECK(d.refusal == ConnectionRefusal::max_connections);
  CHECK(d.shed == 0);
  CHECK(f.closed == std::vector<int>{10});
  a = Connection{};                                 // a's coroutine ended
  auto e = f.registry.open(14, "10.0.0.1", false);  // sheds b
  CHECK(e.refusal == ConnectionRefusal::none);
  CHECK(f.closed == std::vector<int>{10, 11});
}

TEST_CASE("a reused descriptor number never closes the new connection for the old one") {
  Fixture f{{.max_connections = 3}};
  Connection old_one = f.open(10);         // its socket closes, its entry lingers a moment
  Connection new_one = f.open(10);         // the kernel gave the number out again
  CHECK(f.registry.shed_waiting(1) == 1);  // sheds old_one: not through 10
  CHECK(f.closed.empty());
  CHECK(old_one.shed());
  CHECK(f.registry.shed_waiting(1) == 1);
  CHECK(f.closed == std::vector<int>{10});
  CHECK(new_one.shed());
  old_one = Connection{};  // releasing the stale entry keeps the new one's index
  new_one = Connection{};
  CHECK(f.registry.stats().open == 0);
}

TEST_CASE("a moved Connection keeps its place; a default one is registered nowhere") {
  Fixture f{{.max_connections = 2}};
  Connection a = f.open(10);
  const Connection::Busy busy = a.busy();
  Connection moved = std::move(a);
  CHECK(moved.phase() == ConnectionPhase::in_request);
  CHECK(f.registry.stats().open == 1);

  // The token outlives the connection here (declared first): harmless.
  {
    Connection short_lived = f.open(11);
    const Connection::Busy outliving = short_lived.busy();
    short_lived = Connection{};
    CHECK(f.registry.stats().open == 1);
  }
  CHECK(f.registry.stats().open == 1);

  Connection nowhere;
  const Connection::Busy nothing = nowhere.busy();
  CHECK(nowhere.phase() == ConnectionPhase::waiting);
  CHECK(nowhere.number() == 0);
  CHECK_FALSE(nowhere.shed());
}

TEST_CASE("longest_wait is the wait of the oldest waiting connection") {
  Fixture f{{.max_connections = 4}};
  CHECK(f.registry.longest_wait(f.t0) == Clock::duration::zero());
  Connection a = f.open(10, "10.0.0.1", 0);
  Connection b = f.open(11, "10.0.0.1", 2);
  CHECK(f.registry.longest_wait(f.t0 + 5s) == 5s);
  const Connection::Busy busy = a.busy();
  CHECK(f.registry.longest_wait(f.t0 + 5s) == 3s);
}

TEST_CASE("the refusal at accept is a complete 503 with Retry-After and Connection: close") {
  using upload_server::refusal_response;
  const ConnectionLimits limits{.max_connections = 176, .max_per_ip = 5};
  const std::string max = refusal_response(ConnectionRefusal::max_connections, limits);
  CHECK(max.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(max.find("\r\nRetry-After: 1\r\n") != std::string::npos);
  CHECK(max.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(max.find(R"("reason":"max_connections")") != std::string::npos);
  CHECK(max.find(R"("limit":176})") != std::string::npos);
  const auto head_end = max.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  const std::string body = max.substr(head_end + 4);
  CHECK(max.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);

  const std::string per_ip = refusal_response(ConnectionRefusal::per_ip, limits);
  CHECK(per_ip.find(R"("reason":"max_connections_per_ip")") != std::string::npos);
  CHECK(per_ip.find(R"("limit":5})") != std::string::npos);

  const std::string descriptors = refusal_response(ConnectionRefusal::descriptors, limits);
  CHECK(descriptors.find(R"("reason":"descriptors")") != std::string::npos);
  CHECK(descriptors.find("ulimit -n") != std::string::npos);
  CHECK(descriptors.find(R"("limit":176})") != std::string::npos);
}

TEST_CASE("accept failures: one log line per episode, pauses that grow unless room was made") {
  AcceptBackoff backoff;
  const auto t0 = AcceptBackoff::Clock::now();
  CHECK(backoff.succeeded(t0) == std::nullopt);  // no episode to end

  auto first = backoff.failed(t0, false);
  CHECK(first.first);
  CHECK(first.pause == AcceptBackoff::first_pause);
  CHECK(first.pause == 50ms);
  std::chrono::milliseconds last = first.pause;
  for (int i = 0; i < 20; ++i) {
    const auto next = backoff.failed(t0 + std::chrono::milliseconds{i}, false);
    CHECK_FALSE(next.first);
    CHECK(next.pause >= last);
    CHECK(next.pause <= AcceptBackoff::longest_pause);
    last = next.pause;
  }
  CHECK(last == AcceptBackoff::longest_pause);
  // Shedding made room: try again soon; then, without room, from first_pause again.
  CHECK(backoff.failed(t0 + 30ms, true).pause == AcceptBackoff::room_made_pause);
  CHECK(backoff.failed(t0 + 40ms, false).pause == AcceptBackoff::first_pause);

  // Accepts that succeed between failures (a flood, shedding) do not end the
  // episode: no new log line until accepting has worked for `quiet`.
  CHECK(backoff.succeeded(t0 + 50ms) == std::nullopt);
  CHECK_FALSE(backoff.failed(t0 + 500ms, true).first);
  CHECK(backoff.succeeded(t0 + 500ms + AcceptBackoff::quiet - 1ms) == std::nullopt);

  const auto episode = backoff.succeeded(t0 + 500ms + AcceptBackoff::quiet);
  REQUIRE(episode.has_value());
  CHECK(episode->failures == 24);
  CHECK(episode->lasted == 500ms);  // first failure to last
  CHECK(backoff.succeeded(t0 + 3s) == std::nullopt);
  CHECK(backoff.failed(t0 + 4s, false).first);  // a new episode
}

TEST_CASE("accept errors: resources vs one connection's trouble") {
  using upload_server::connection_error;
  using upload_server::out_of_resources;
  CHECK(out_of_resources(EMFILE));
  CHECK(out_of_resources(ENFILE));
  CHECK(out_of_resources(ENOBUFS));
  CHECK(out_of_resources(ENOMEM));
  CHECK_FALSE(out_of_resources(ECONNABORTED));
  CHECK(connection_error(ECONNABORTED));
  CHECK(connection_error(EPROTO));
  CHECK_FALSE(connection_error(EMFILE));
  CHECK_FALSE(connection_error(EBADF));
}
