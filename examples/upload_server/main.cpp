// admit_upload_server - HTTP and WebSocket uploads, admitted by admit.
//
//   admit_upload_server --port 8080 --dir uploads --budget 200MiB --slots 16
//   curl -F "file=@big.zip" http://127.0.0.1:8080/api/v1/upload
//
// One thread runs everything (an io_context and a coroutine per connection);
// uploads are I/O bound, and one thread keeps the example free of locks. Only
// SHA-256, most of the CPU an upload costs, runs beside it (hash_threads.hpp,
// --hash-threads), on buffers handed over and shared with nothing else.
// SIGINT or SIGTERM: stop accepting, close the pool (waiters and new requests
// are refused with `closed`), let running uploads finish for up to --grace.
// SIGUSR1: log why the pool admits what it admits now (admit::describe: the
// bottleneck and, with --track-reservations, the upload that holds the most);
// GET /debug/uploads lists the uploads themselves.
//
// The accept loop applies the connection limits (connection_limits.hpp): a
// connection over --max-connections (none waiting to shed) or
// --max-connections-per-ip is answered 503 at once and closed; at the cap, or
// when descriptors run short, the longest-waiting connection (no complete
// request yet) is closed to make room; accept() failing for want of
// descriptors sheds too, and backs off, logging once per episode.
//
// --budget auto derives the budget from the memory limit at start; with
// --follow-memory the budget follows the limit and new uploads are refused
// while memory usage is high (memory_follow.hpp).
#include <fmt/format.h>
#include <admit/config.hpp>
#include <admit/fmt.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>  // getrlimit(RLIMIT_NOFILE)
#include <sys/socket.h>    // shutdown(2), to shed a connection

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "connection_limits.hpp"
#include "http_session.hpp"
#include "memory_follow.hpp"
#include "options.hpp"
#include "server.hpp"
#include "storage.hpp"

namespace {

namespace net = boost::asio;
using net::ip::tcp;
using upload_server::Server;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

void log_failure(std::exception_ptr failure) {
  if (!failure) return;
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    fmt::print(stderr, "connection failed: {}\n", e.what());
  }
}

using Clock = std::chrono::steady_clock;
using upload_server::ConnectionRefusal;

// Connections shed per failed accept() for want of descriptors: a few, as
// nginx drains up to 32 reusable connections when it runs out.
constexpr std::uint32_t shed_per_failed_accept = 16;

std::string human(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms < 1000 ? fmt::format("{} ms", ms)
                   : fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
}

/// The descriptor limit in force (RLIMIT_NOFILE's soft limit, ulimit -n).
std::uint64_t descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  return limit.rlim_cur;
}

/// What the accept loop needs besides the server: the figures fixed at start.
struct Listener {
  tcp::acceptor& acceptor;
  std::uint64_t nofile;     // the descriptor limit
  std::uint64_t spare;      // descriptors kept free for files and the process
  std::string refused_max;  // the whole 503 answers, built once
  std::string refused_per_ip;
  std::string refused_descriptors;
};

// Sheds and refusals come in floods: the first is logged at once, the rest in
// one line per second at most, with the counts since the previous line (the
// exact totals are on /metrics).
class ConnectionLog {
 public:
  ConnectionLog(const Server& server, const net::any_io_executor& executor)
      : server_{server}, timer_{executor} {}
  ConnectionLog(const ConnectionLog&) = delete;
  ConnectionLog& operator=(const ConnectionLog&) = delete;
  // The timer's handler then runs with operation_aborted, touching nothing.
  ~ConnectionLog() = default;

  void note(std::uint32_t shed, ConnectionRefusal refusal) {
    shed_ += shed;
    refused_max_ += refusal == ConnectionRefusal::max_connections ? 1 : 0;
    refused_per_ip_ += refusal == ConnectionRefusal::per_ip ? 1 : 0;
    refused_descriptors_ += refusal == ConnectionRefusal::descriptors ? 1 : 0;
    if (pending_) return;  // the timer logs it
    const auto now = Clock::now();
    if (!last_ || now - *last_ >= interval) {
      write(now);
      return;
    }
    pending_ = true;
    timer_.expires_at(*last_ + interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: `this` may be gone
      pending_ = false;
      write(Clock::now());
    });
  }

 private:
  static constexpr std::chrono::seconds interval{1};

  void write(Clock::time_point now) {
    const auto stats = server_.connections.stats();
    std::string refused =
        fmt::format("{} refused (at most {} open)", refused_max_, stats.max_connections);
    if (stats.max_per_ip != 0) {
      refused +=
          fmt::format(", {} refused (at most {} per address)", refused_per_ip_, stats.max_per_ip);
    }
    if (refused_descriptors_ != 0) {
      refused +=
          fmt::format(", {} refused (descriptors short, none waiting)", refused_descriptors_);
    }
    fmt::print(
        "connections: {} shed (no complete request yet, longest-waiting first), {}{}; open now "
        "{}, {} waiting (the longest for {})\n",
        shed_, refused, last_ ? fmt::format(" in the last {}", human(now - *last_)) : "",
        stats.open, stats.waiting, human(server_.connections.longest_wait(now)));
    std::fflush(stdout);
    last_ = now;
    shed_ = refused_max_ = refused_per_ip_ = refused_descriptors_ = 0;
  }

  const Server& server_;
  net::steady_timer timer_;
  bool pending_ = false;
  std::optional<Clock::time_point> last_;
  std::uint64_t shed_ = 0;
  std::uint64_t refused_max_ = 0;
  std::uint64_t refused_per_ip_ = 0;
  std::uint64_t refused_descriptors_ = 0;
};

// A refused connection gets its whole answer at once, without a coroutine or a
// timer: it must give its descriptor back now, since running short of them is
// the usual reason it is refused. A fresh socket's send buffer takes the few
// hundred bytes whole; FIN follows them. What the client already sent is read
// and dropped first, so that the close does not turn into a reset that could
// destroy the answer before the client reads it.
void refuse_at_accept(tcp::socket& socket, std::string_view answer) {
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.send(net::buffer(answer), 0, ignored);
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 4096> discard;
  for (int reads = 0; reads < 16; ++reads) {  // at most 64 KiB, never blocking
    boost::system::error_code ec;
    if (socket.receive(net::buffer(discard), 0, ec) == 0 || ec) break;
  }
  socket.close(ignored);
}

// The address a connection counts against for --max-connections-per-ip: an
// IPv4 client on a dual-stack socket counts as its IPv4 address.
std::string peer_address(const net::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

void open_connection(Server& server, const Listener& listener, ConnectionLog& log,
                     tcp::socket socket) {
  boost::system::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // reset before it was looked at: nobody to answer
  // Descriptors are numbered lowest free first: this one's number is how many
  // others are open.
  const int handle = socket.native_handle();
  const bool descriptors_short =
      static_cast<std::uint64_t>(handle) + listener.spare >= listener.nofile;
  auto opened = server.connections.open(handle, peer_address(peer.address()), descriptors_short);
  if (opened.refusal != ConnectionRefusal::none || opened.shed != 0) {
    log.note(opened.shed, opened.refusal);
  }
  if (opened.refusal != ConnectionRefusal::none) {
    const std::string& answer =
        opened.refusal == ConnectionRefusal::per_ip        ? listener.refused_per_ip
        : opened.refusal == ConnectionRefusal::descriptors ? listener.refused_descriptors
                                                           : listener.refused_max;
    refuse_at_accept(socket, answer);
    return;
  }
  const auto executor = socket.get_executor();
  net::co_spawn(executor,
                upload_server::serve_http(server, std::move(socket), std::move(opened.connection)),
                log_failure);
}

net::awaitable<void> accept_connections(Server& server, Listener listener) {
  const auto executor = co_await net::this_coro::executor;
  upload_server::AcceptBackoff backoff;
  ConnectionLog log{server, executor};
  net::steady_timer pause{executor};
  while (listener.acceptor.is_open()) {
    auto [ec, socket] = co_await listener.acceptor.async_accept(use_tuple);
    if (ec == net::error::operation_aborted) break;  // closed for shutdown
    if (ec) {
      server.connections.count_accept_failure();
      const bool system_error = ec.category() == boost::system::system_category();
      if (system_error && upload_server::connection_error(ec.value())) continue;  // its own trouble
      // Out of descriptors, say: make room by shedding waiting connections (their
      // descriptors come back as their coroutines end), and pause instead of
      // spinning. One log line for the whole episode.
      const std::uint32_t shed = system_error && upload_server::out_of_resources(ec.value())
                                     ? server.connections.shed_waiting(shed_per_failed_accept)
                                     : 0;
      const auto failure = backoff.failed(Clock::now(), shed != 0);
      if (failure.first) {
        const auto stats = server.connections.stats();
        fmt::print(stderr,
                   "accept failed: {} ({} connections open, {} waiting); shed {} waiting "
                   "connections, pausing {} ms and longer; not logged again until accepting "
                   "has worked for {} s\n",
                   ec.message(), stats.open, stats.waiting, shed, failure.pause.count(),
                   upload_server::AcceptBackoff::quiet.count());
      }
      pause.expires_after(failure.pause);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (const auto episode = backoff.succeeded(Clock::now())) {
      fmt::print(stderr, "accepting again after {} failed accepts over {}\n", episode->failures,
                 human(episode->lasted));
    }
    open_connection(server, listener, log, std::move(socket));
  }
}

// One line per SIGUSR1, for an operator asking why uploads are refused.
net::awaitable<void> describe_on_signal(net::signal_set& signals, const upload_server::Pool& pool) {
  for (;;) {
    auto [ec, signal] = co_await signals.async_wait(use_tuple);
    if (ec) co_return;  // cancelled: shutting down
    const std::string line = fmt::format("pool on signal {}: {}\n", signal, admit::describe(pool));
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
}

net::awaitable<void> shut_down(Server& server, tcp::acceptor& acceptor, int signal) {
  fmt::print("shutting down on signal {}: {} uploads running, grace {} ms\n", signal,
             server.uploads_running, server.options.grace.count());
  std::fflush(stdout);
  boost::system::error_code ignored;
  acceptor.close(ignored);
  server.pool.close();  // refuses waiters and new requests with `closed`

  const auto executor = co_await net::this_coro::executor;
  const auto give_up = std::chrono::steady_clock::now() + server.options.grace;
  net::steady_timer tick{executor};
  while (server.uploads_running > 0 && std::chrono::steady_clock::now() < give_up) {
    tick.expires_after(std::chrono::milliseconds{50});
    co_await tick.async_wait(use_tuple);
  }
  std::size_t told = 0;
  if (server.uploads_running > 0) {
    // Out of grace: tell WebSocket clients (close 1001) and give the closes
    // a moment to go out. HTTP uploads mid-body have no way to be told.
    fmt::print("grace over: cutting off {} uploads\n", server.uploads_running);
    std::fflush(stdout);
    told = server.cut_offs.run_all();
    const auto closes_sent = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    while (server.uploads_running > 0 && std::chrono::steady_clock::now() < closes_sent) {
      tick.expires_after(std::chrono::milliseconds{20});
      co_await tick.async_wait(use_tuple);
    }
  }
  // A WebSocket upload sent 1001 may still wait for its client's answer:
  // it had its word (Server::uploads_told).
  const int silent = server.uploads_running - server.uploads_told;
  fmt::print("stopped; {} uploads cut off without a word{}\n", silent,
             told == 0 ? std::string{} : fmt::format(", {} told the server is going away", told));
  std::fflush(stdout);
  // Stopping destroys every connection's coroutine: sockets close, partial
  // files are removed and reservations return to the pool.
  static_cast<net::io_context&>(executor.context()).stop();
}

int run(const upload_server::Options& options) {
  // --budget auto: from the memory limit read now (memory_follow.hpp), before
  // anything is created on disk.
  const upload_server::StartingBudget budget = upload_server::starting_budget(options);
  if (budget.budget == 0) {
    fmt::print(stderr, "{}\n", budget.line);
    return 1;
  }
  if (!budget.line.empty()) fmt::print("{}\n", budget.line);

  std::error_code fs_error;
  std::filesystem::create_directories(options.dir, fs_error);
  if (fs_error) {
    fmt::print(stderr, "cannot create --dir {}: {}\n", options.dir.string(), fs_error.message());
    return 1;
  }
  // Removes what a crash left behind and says what the filesystem supports.
  // UPLOAD_SERVER_PARTIAL_FILES=hidden forces the fallback to .part files (tests).
  // Declared before the io_context: the uploads its connections hold are
  // hashed on these threads, so they must outlive them.
  upload_server::HashThreads hash_threads{
      options.hash_threads.value_or(upload_server::HashThreads::default_count())};
  upload_server::StorageMode mode{.sync_commits = options.fsync, .hash_threads = &hash_threads};
  const char* partial = std::getenv("UPLOAD_SERVER_PARTIAL_FILES");
  if (partial != nullptr && std::string_view{partial} == "hidden") mode.unnamed_files = false;
  upload_server::set_storage_mode(mode);
  const upload_server::StorageReport storage = upload_server::prepare_storage(options.dir);
  fmt::print(storage.error ? stderr : stdout, "{}\n",
             upload_server::describe(storage, options.dir));
  if (storage.error) return 1;

  // Declared before the io_context: the connections destroyed with it
  // return their reservations to the pool and count themselves out of the
  // server, so both must still exist.
  upload_server::Pool pool{admit::PoolConfig{.memory_budget = budget.budget,
                                             .slots = options.slots,
                                             .fairness = options.fairness,
                                             .track_reservations = options.track_reservations,
                                             .max_head_wait = options.max_head_wait},
                           options.policy};
  // Checked by parse_options already (names, percentages, their sum).
  for (const upload_server::PartitionFlag& flag : upload_server::pool_partitions(options.partitions)) {
    pool.add_partition(flag.name, flag.config);
  }

  // --max-connections 0: what the descriptor limit leaves after the reserve.
  const std::uint64_t nofile = descriptor_limit();
  const std::uint64_t reserve = upload_server::descriptor_reserve(options.slots);
  std::uint32_t max_connections = options.max_connections;
  std::string derived_from;
  if (max_connections == 0) {
    const auto derived = upload_server::default_max_connections(nofile, options.slots);
    if (!derived) {
      fmt::print(stderr,
                 "--max-connections: the descriptor limit (ulimit -n {}) leaves fewer than 16 "
                 "connections after the {} descriptors kept for the process and {} slots; raise "
                 "ulimit -n, lower --slots or set --max-connections\n",
                 nofile, reserve, options.slots);
      return 1;
    }
    max_connections = *derived;
    derived_from =
        fmt::format(" (ulimit -n {} less {} kept for files and the process)", nofile, reserve);
  } else if (nofile < std::numeric_limits<std::uint64_t>::max() &&
             max_connections > nofile - std::min(nofile, reserve)) {
    fmt::print(stderr,
               "warning: --max-connections {} is more than ulimit -n {} allows after {} "
               "descriptors kept for files and the process; out of descriptors first, the "
               "server sheds waiting connections and pauses accepting\n",
               max_connections, nofile, reserve);
  }
  const upload_server::ConnectionLimits limits{.max_connections = max_connections,
                                               .max_per_ip = options.max_connections_per_ip};
  // Shedding ends a connection's reading side: its coroutine's pending read
  // ends (end of stream), the coroutine ends and closes the socket. The
  // descriptor stays the connection's until then, so the number is never
  // closed twice or under someone else (and a session that wants to may still
  // answer, having seen Connection::shed()).
  upload_server::ConnectionRegistry connections{limits,
                                                [](int handle) { ::shutdown(handle, SHUT_RD); }};
  // When refused clients should come back (retry_advice.hpp), from the pool's pace.
  upload_server::RetryAdvice retry{pool};
  Server server{
      .options = options, .pool = pool, .connections = connections, .retry = retry, .cut_offs = {}};
  if (budget.facts) server.memory.limit_bytes = budget.facts->limit_bytes;
  net::io_context io{1};
  // After the io_context, so destroyed before it: its timer is the io_context's.
  std::optional<upload_server::MemoryFollower> follower;
  if (options.follow_memory > std::chrono::milliseconds::zero()) {
    follower.emplace(server, io.get_executor());
    follower->start();  // a first poll now: under pressure already, say so before listening
  }
  tcp::acceptor acceptor{io};
  boost::system::error_code ec;
  const tcp::endpoint endpoint{net::ip::make_address(options.host, ec), options.port};
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    fmt::print(stderr, "cannot listen on {}:{}: {}\n", options.host, options.port, ec.message());
    return 1;
  }

  const auto local = acceptor.local_endpoint();
  fmt::print("policy {}, budget {} bytes, {} slots, wait {} ms, admission {}, buffer {}\n",
             options.policy.name(), pool.memory_budget(), options.slots, options.wait.count(),
             options.admission ? "on" : "off",
             options.buffer == upload_server::BufferMode::memory ? "memory" : "stream");
  if (options.fairness != admit::Fairness::fifo) {
    fmt::print("fairness {}\n", options.fairness == admit::Fairness::barging
                                     ? "barging"
                                     : fmt::format("lanes, passing for at most {} ms",
                                                   options.max_head_wait.count()));
  }
  for (const admit::PartitionStats& partition : pool.partition_stats()) {
    fmt::print("partition {}: guarantee {}% ({} bytes), ceiling {}% ({} bytes); tenant from {} or "
               "?tenant=\n",
               partition.name, partition.config.guarantee_percent, partition.guarantee_bytes,
               partition.config.ceiling_percent, partition.ceiling_bytes, options.tenant_header);
  }
  if (!options.bypass_token.empty()) {
    fmt::print("bypass: requests with the header {} and the token skip admission\n",
               upload_server::bypass_header);
  }
  if (follower) {
    fmt::print("memory: following every {} ms; pressure on at {}% of the limit, off at {}%\n",
               options.follow_memory.count(), options.pressure_high, options.pressure_low);
  }
  fmt::print("connections: at most {}{}, {} per address\n", max_connections, derived_from,
             limits.max_per_ip == 0 ? std::string{"any number"}
                                    : fmt::format("at most {}", limits.max_per_ip));
  // Before "listening": from then on a SIGUSR1 must be logged, not kill the
  // process (its default action).
  net::signal_set describe_signals{io, SIGUSR1};
  net::co_spawn(io, describe_on_signal(describe_signals, pool), log_failure);
  fmt::print("listening on {}:{}\n", local.address().to_string(), local.port());
  std::fflush(stdout);

  Listener listener{
      .acceptor = acceptor,
      .nofile = nofile,
      .spare = upload_server::descriptor_spare(options.slots),
      .refused_max = upload_server::refusal_response(ConnectionRefusal::max_connections, limits),
      .refused_per_ip = upload_server::refusal_response(ConnectionRefusal::per_ip, limits),
      .refused_descriptors =
          upload_server::refusal_response(ConnectionRefusal::descriptors, limits)};
  net::co_spawn(io, accept_connections(server, std::move(listener)), log_failure);
  net::co_spawn(io, upload_server::observe_pool(server), log_failure);
  net::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const boost::system::error_code& error, int signal) {
    if (!error) net::co_spawn(io, shut_down(server, acceptor, signal), log_failure);
  });
  io.run();
  pool.close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  upload_server::Options options;
  try {
    options = upload_server::parse_options(args);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "{}\n\n{}", e.what(), upload_server::usage(argv[0]));
    return 2;
  }
  if (options.help) {
    fmt::print("{}", upload_server::usage(argv[0]));
    return 0;
  }
  try {
    return run(options);
  } catch (const std::invalid_argument& e) {  // a budget or slot count admit refuses
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
}
