// Tests for admit/asio.hpp: async_acquire as an Asio operation. The handler
// runs on its executor and never inside the initiating call, the operation
// keeps io_context::run() alive while it waits, per-operation cancellation
// answers `cancelled` without losing capacity, and a completion that never
// runs still returns its reservation.
//
// Built twice (tests/CMakeLists.txt): on Boost.Asio (admit_asio_tests, group
// "asio") and on standalone Asio (admit_asio_standalone_tests, group
// "asio_standalone", whose target defines ADMIT_ASIO_STANDALONE). `net` names
// the Asio under test; the tests are the same.
#include <admit/asio.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#if defined(ADMIT_ASIO_STANDALONE)
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
// The standalone build must not lean on Boost anywhere.
#if defined(BOOST_ASIO_VERSION) || defined(BOOST_VERSION)
#error "<admit/asio.hpp> with ADMIT_ASIO_STANDALONE pulled in Boost"
#endif
namespace net = ::asio;
#else
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
namespace net = ::boost::asio;
#endif

#include "catch.hpp"
#include "wait_support.hpp"

using admit::Admission;
using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit_test::eventually;
using namespace std::chrono_literals;

namespace {

using Pool = admit::SlotPool<FlatPolicy>;

constexpr PoolConfig config{.memory_budget = 100 * MiB, .slots = 4};

// Records the answer and the thread it ran on.
struct Answer {
  int calls = 0;
  std::optional<Admission> admission;
  std::thread::id thread;

  auto handler() {
    return [this](Admission a) {
      ++calls;
      admission.emplace(std::move(a));
      thread = std::this_thread::get_id();
    };
  }
};

}  // namespace

TEST_CASE("an immediate answer still runs on the executor, after the initiating call", "[asio]") {
  Pool pool{config, FlatPolicy{100}};
  net::io_context io;
  Answer admitted;
  Answer refused;

  admit::asio::async_acquire(pool, 10 * MiB, net::bind_executor(io, admitted.handler()));
  admit::asio::async_acquire(pool, 200 * MiB, net::bind_executor(io, refused.handler()));
  CHECK(admitted.calls == 0);  // Asio forbids running a handler inside its initiation
  CHECK(refused.calls == 0);
  CHECK(pool.stats().bytes_in_use == 10 * MiB);  // the grant itself happened at once

  io.run();
  REQUIRE(admitted.calls == 1);
  REQUIRE(admitted.admission->has_value());
  CHECK(admitted.admission->value().bytes() == 10 * MiB);
  CHECK(admitted.thread == std::this_thread::get_id());
  REQUIRE(refused.calls == 1);
  REQUIRE_FALSE(refused.admission->has_value());
  CHECK(refused.admission->error().reason == Reason::too_large);

  admitted.admission.reset();
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("a waiting operation keeps io_context::run() busy until room is made", "[asio]") {
  Pool pool{config, FlatPolicy{100}};
  auto holder = std::move(pool.try_acquire(100 * MiB)).value();
  net::io_context io;
  Answer answer;
  admit::asio::async_acquire(pool, 60 * MiB, net::bind_executor(io, answer.handler()));

  // Released from another thread once run() is (or would have been) idle.
  // (Catch2 assertions are for the test's own thread: the helper records.)
  bool queued = false;
  std::thread releaser{[&] {
    queued = eventually([&] { return pool.stats().waiters == 1; });
    std::this_thread::sleep_for(20ms);
    holder.release();
  }};
  io.run();  // returns only after the handler: the wait counts as work
  releaser.join();
  CHECK(queued);

  REQUIRE(answer.calls == 1);
  REQUIRE(answer.admission->has_value());
  CHECK(answer.thread == std::this_thread::get_id());  // not the releasing thread
  CHECK(pool.stats().bytes_in_use == 60 * MiB);
}

TEST_CASE("use_awaitable: co_await yields the Admission", "[asio][awaitable]") {
  Pool pool{config, FlatPolicy{100}};
  net::io_context io;
  std::vector<std::uint64_t> order;

  // Three uploads of 60 MiB in a 100 MiB pool: each waits for the one before.
  auto upload = [&](std::uint64_t id) -> net::awaitable<void> {
    Admission admission = co_await admit::asio::async_acquire(pool, 60 * MiB, net::use_awaitable);
    REQUIRE(admission.has_value());
    CHECK(pool.stats().bytes_in_use == 60 * MiB);
    order.push_back(id);
    net::steady_timer pause{io, 5ms};
    co_await pause.async_wait(net::use_awaitable);
  };  // the reservation returns here, admitting the next waiter
  for (std::uint64_t id = 0; id < 3; ++id) {
    net::co_spawn(io, upload(id), net::detached);
  }
  io.run();

  CHECK(order == std::vector<std::uint64_t>{0, 1, 2});  // FIFO
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().admitted == 3);
}

TEST_CASE("per-operation cancellation answers a waiter with cancelled", "[asio][cancel]") {
  Pool pool{config, FlatPolicy{100}};
  auto holder = std::move(pool.try_acquire(100 * MiB)).value();
  net::io_context io;
  net::cancellation_signal signal;
  Answer answer;

  admit::asio::async_acquire(
      pool, 10 * MiB,
      net::bind_cancellation_slot(signal.slot(), net::bind_executor(io, answer.handler())));
  CHECK(pool.stats().waiters == 1);

  const auto type = GENERATE(net::cancellation_type::terminal, net::cancellation_type::partial,
                             net::cancellation_type::total);
  signal.emit(type);
  CHECK(pool.stats().waiters == 0);  // taken out of the queue at once
  io.run();

  REQUIRE(answer.calls == 1);
  REQUIRE_FALSE(answer.admission->has_value());
  CHECK(answer.admission->error().reason == Reason::cancelled);
  CHECK(pool.stats().rejected.cancelled == 1);
  CHECK(pool.stats().bytes_in_use == 100 * MiB);  // only the holder's
  CHECK_FALSE(signal.slot().has_handler());       // the operation cleaned up after itself
}

TEST_CASE("cancelling after the grant delivers the reservation", "[asio][cancel]") {
  Pool pool{config, FlatPolicy{100}};
  net::io_context io;
  net::cancellation_signal signal;
  Answer answer;

  // Admitted at once; the answer waits in the io_context's queue.
  admit::asio::async_acquire(
      pool, 10 * MiB,
      net::bind_cancellation_slot(signal.slot(), net::bind_executor(io, answer.handler())));
  signal.emit(net::cancellation_type::terminal);
  io.run();

  REQUIRE(answer.calls == 1);
  REQUIRE(answer.admission->has_value());  // the grant won: nothing lost
  CHECK(pool.stats().rejected.cancelled == 0);
  answer.admission.reset();
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("a timer raced with awaitable operators cancels the acquire", "[asio][awaitable]") {
  using namespace net::experimental::awaitable_operators;
  Pool pool{config, FlatPolicy{100}};
  auto holder = std::move(pool.try_acquire(100 * MiB)).value();
  net::io_context io;
  std::optional<std::size_t> winner;

  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer{io, 20ms};
        auto result = co_await (admit::asio::async_acquire(pool, 10 * MiB, net::use_awaitable) ||
                                timer.async_wait(net::use_awaitable));
        winner = result.index();
      },
      net::detached);
  io.run();

  REQUIRE(winner == 1u);  // the timer
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats().rejected.cancelled == 1);
  CHECK(pool.stats().bytes_in_use == 100 * MiB);
}

TEST_CASE("async_acquire_for times out on the pool's deadline", "[asio][deadline]") {
  Pool pool{config, FlatPolicy{100}};
  auto holder = std::move(pool.try_acquire(100 * MiB)).value();
  net::io_context io;
  Answer answer;

  admit::asio::async_acquire_for(pool, 10 * MiB, 10ms, net::bind_executor(io, answer.handler()));
  io.run();  // kept busy until the timer thread answers

  REQUIRE(answer.calls == 1);
  REQUIRE_FALSE(answer.admission->has_value());
  CHECK(answer.admission->error().reason == Reason::timeout);
  CHECK(answer.thread == std::this_thread::get_id());
  CHECK(pool.stats().waiters == 0);
}

TEST_CASE("an expired deadline is answered with timeout, through the executor",
          "[asio][deadline]") {
  Pool pool{config, FlatPolicy{100}};
  net::io_context io;
  Answer answer;

  admit::asio::async_acquire(pool, 10 * MiB, Pool::clock::now() - 1s,
                             net::bind_executor(io, answer.handler()));
  CHECK(answer.calls == 0);
  io.run();
  REQUIRE(answer.calls == 1);
  CHECK(answer.admission->error().reason == Reason::timeout);
  CHECK(pool.stats().bytes_in_use == 0);  // took nothing, though there was room
}

TEST_CASE("a completion that never runs still returns its reservation", "[asio][lifetime]") {
  Pool pool{config, FlatPolicy{100}};
  {
    net::io_context io;
    Answer answer;
    admit::asio::async_acquire(pool, 10 * MiB, net::bind_executor(io, answer.handler()));
    CHECK(pool.stats().bytes_in_use == 10 * MiB);
    // io never runs; destroying it destroys the queued completion.
  }
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("other completion tokens: use_future and a plain callback", "[asio]") {
  Pool pool{config, FlatPolicy{100}};

  SECTION("use_future completes on the io_context's thread") {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::thread runner{[&] { io.run(); }};
    std::future<Admission> future =
        admit::asio::async_acquire(pool, 10 * MiB, net::bind_executor(io, net::use_future));
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    CHECK(future.get().has_value());
    guard.reset();
    runner.join();
  }

  SECTION("a callback without an executor runs on the system executor") {
    struct Ran {
      bool admitted;
      std::thread::id thread;
    };
    std::promise<Ran> ran;
    admit::asio::async_acquire(pool, 10 * MiB, [&](Admission admission) {
      const bool admitted = admission.has_value();
      // Give the reservation back before saying we are done: once the test
      // learns that, it destroys the pool, which must outlive the release.
      if (admitted) admission->release();
      ran.set_value({admitted, std::this_thread::get_id()});
    });
    auto future = ran.get_future();
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    const Ran result = future.get();
    CHECK(result.admitted);
    CHECK(result.thread != std::this_thread::get_id());
  }
  CHECK(pool.stats().bytes_in_use == 0);
}

// Cancellations racing grants on a multi-threaded io_context, each operation
// on its own strand as Asio requires for cancellation slots. Every answer
// arrives once; every reservation comes back; the limits hold throughout.
TEST_CASE("stress: cancellation racing grants loses nothing", "[asio][cancel][stress]") {
  constexpr int operations = 2000;
  Pool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 3}, FlatPolicy{100}};
  net::io_context io;
  std::atomic<int> answered{0};
  std::atomic<int> admitted{0};
  std::atomic<bool> over_limit{false};

  struct Operation {
    explicit Operation(net::io_context& io) : strand{net::make_strand(io)} {}
    net::strand<net::io_context::executor_type> strand;
    net::cancellation_signal signal;
  };
  std::vector<std::unique_ptr<Operation>> ops;
  ops.reserve(operations);
  std::mt19937 rng{42};

  for (int i = 0; i < operations; ++i) {
    auto& op = *ops.emplace_back(std::make_unique<Operation>(io));
    const std::uint64_t size = (1 + rng() % 40) * MiB;
    const auto hold = std::chrono::microseconds{rng() % 200};
    net::post(op.strand, [&, size, hold] {
      admit::asio::async_acquire(
          pool, size,
          net::bind_cancellation_slot(
              op.signal.slot(), net::bind_executor(op.strand, [&, hold](Admission admission) {
                const auto stats = pool.stats();
                if (stats.bytes_in_use > 100 * MiB || stats.slots_in_use > 3) over_limit = true;
                if (admission) {
                  ++admitted;
                  std::this_thread::sleep_for(hold);
                }
                ++answered;
              })));
    });
    if (rng() % 2 == 0) {  // cancel about half of them, at a random later moment
      net::post(op.strand, [&op] { op.signal.emit(net::cancellation_type::terminal); });
    }
  }
  std::thread second{[&] { io.run(); }};
  io.run();
  second.join();

  CHECK(answered == operations);
  CHECK(admitted > 0);
  CHECK_FALSE(over_limit);
  const auto stats = pool.stats();
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.slots_in_use == 0);
  CHECK(stats.waiters == 0);
  CHECK(stats.admitted == static_cast<std::uint64_t>(admitted.load()));
  CHECK(stats.admitted + stats.rejected.total() == static_cast<std::uint64_t>(operations));
}

TEST_CASE("the partition overloads admit in the partition", "[asio][partition]") {
  Pool pool{config, FlatPolicy{100}};
  const admit::Partition batch = pool.add_partition("batch", {.ceiling_percent = 30});
  net::io_context io;
  Answer now;
  Answer over;
  Answer timed;
  Answer waited;
  admit::asio::async_acquire(pool, 20 * MiB, batch, net::bind_executor(io, now.handler()));
  admit::asio::async_acquire(pool, 40 * MiB, batch, net::bind_executor(io, over.handler()));
  admit::asio::async_acquire_for(pool, 20 * MiB, 1ms, batch,
                                 net::bind_executor(io, timed.handler()));
  io.run();
  REQUIRE(now.calls == 1);
  REQUIRE(now.admission->has_value());
  CHECK(pool.stats(batch).bytes_in_use == 20 * MiB);
  REQUIRE(over.calls == 1);
  CHECK(over.admission->error().reason == Reason::too_large);
  CHECK(over.admission->error().limit == admit::Limit::partition);
  REQUIRE(timed.calls == 1);  // batch is at 20 of its 30 MiB: waited for its own room
  CHECK(timed.admission->error().reason == Reason::timeout);

  io.restart();
  admit::asio::async_acquire(pool, 20 * MiB, admit::SlotPool<FlatPolicy>::clock::now() + 10s,
                             batch, net::bind_executor(io, waited.handler()));
  now.admission.reset();  // batch's room comes back: the waiter is admitted
  io.run();
  REQUIRE(waited.calls == 1);
  REQUIRE(waited.admission->has_value());
  CHECK(pool.stats(batch).bytes_in_use == 20 * MiB);
}
