// admit_upload_server - HTTP and WebSocket uploads, admitted by admit.
//
//   admit_upload_server --port 8080 --dir uploads --budget 200MiB --slots 16
//   curl -F "file=@big.zip" http://127.0.0.1:8080/api/v1/upload
//
// One thread runs everything (an io_context and a coroutine per connection);
// uploads are I/O bound, and one thread keeps the example free of locks.
// SIGINT or SIGTERM: stop accepting, close the pool (waiters and new requests
// are refused with `closed`), let running uploads finish for up to --grace.
#include <fmt/format.h>
#include <admit/config.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

#include "http_session.hpp"
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

net::awaitable<void> accept_connections(Server& server, tcp::acceptor& acceptor) {
  const auto executor = co_await net::this_coro::executor;
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec == net::error::operation_aborted) break;  // closed for shutdown
    if (ec) {
      // Out of descriptors, say: back off instead of spinning.
      fmt::print(stderr, "accept failed: {}\n", ec.message());
      net::steady_timer pause{executor, std::chrono::milliseconds{100}};
      co_await pause.async_wait(use_tuple);
      continue;
    }
    net::co_spawn(executor, upload_server::serve_http(server, std::move(socket)), log_failure);
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
  if (server.uploads_running > 0) {
    // Out of grace: tell WebSocket clients (close 1001) and give the closes
    // a moment to go out. HTTP uploads mid-body have no way to be told.
    fmt::print("grace over: cutting off {} uploads\n", server.uploads_running);
    std::fflush(stdout);
    server.cut_offs.run_all();
    const auto closes_sent = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    while (server.uploads_running > 0 && std::chrono::steady_clock::now() < closes_sent) {
      tick.expires_after(std::chrono::milliseconds{20});
      co_await tick.async_wait(use_tuple);
    }
  }
  // A WebSocket upload sent 1001 may still wait for its client's answer.
  fmt::print("stopped; {} uploads cut off without a word\n",
             server.uploads_running - server.uploads_told);
  std::fflush(stdout);
  // Stopping destroys every connection's coroutine: sockets close, partial
  // files are removed and reservations return to the pool.
  static_cast<net::io_context&>(executor.context()).stop();
}

int run(const upload_server::Options& options) {
  std::error_code fs_error;
  std::filesystem::create_directories(options.dir, fs_error);
  if (fs_error) {
    fmt::print(stderr, "cannot create --dir {}: {}\n", options.dir.string(), fs_error.message());
    return 1;
  }
  // Removes what a crash left behind and says what the filesystem supports.
  // UPLOAD_SERVER_PARTIAL_FILES=hidden forces the fallback to .part files (tests).
  const char* partial = std::getenv("UPLOAD_SERVER_PARTIAL_FILES");
  if (partial != nullptr && std::string_view{partial} == "hidden") {
    upload_server::set_storage_mode({.unnamed_files = false});
  }
  const upload_server::StorageReport storage = upload_server::prepare_storage(options.dir);
  fmt::print(storage.error ? stderr : stdout, "{}\n",
             upload_server::describe(storage, options.dir));
  if (storage.error) return 1;

  // Declared before the io_context: the connections destroyed with it
  // return their reservations to the pool and count themselves out of the
  // server, so both must still exist.
  upload_server::Pool pool{
      admit::PoolConfig{.memory_budget = options.budget, .slots = options.slots}, options.policy};
  Server server{.options = options, .pool = pool, .cut_offs = {}};
  net::io_context io{1};
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
  fmt::print("policy {}, budget {} bytes, {} slots, wait {} ms, admission {}\n",
             options.policy.name(), options.budget, options.slots, options.wait.count(),
             options.admission ? "on" : "off");
  fmt::print("listening on {}:{}\n", local.address().to_string(), local.port());
  std::fflush(stdout);

  net::co_spawn(io, accept_connections(server, acceptor), log_failure);
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
