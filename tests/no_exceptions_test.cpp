// admit built with -fno-exceptions, as many servers are: every public header
// compiles, the pool works, validation_error() reports what the constructors
// would have thrown, and each mistake that would throw instead writes the same
// message to stderr and aborts (checked in a forked child, whose stderr and
// exit signal the parent reads).
//
// A plain program, not Catch2: the test framework itself needs exceptions.
// ADMIT_TEST_FMT and ADMIT_TEST_ASIO add <admit/fmt.hpp> and <admit/asio.hpp>
// (Boost.Asio), when the build has them.
#include <admit/admit.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <utility>

#if defined(ADMIT_TEST_FMT)
#include <admit/fmt.hpp>
#endif

#if defined(ADMIT_TEST_ASIO)
#include <admit/asio.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/assert/source_location.hpp>
#include <exception>

// Boost built without exceptions asks the program to say what a throw becomes
// (declared noreturn by Boost).
namespace boost {
void throw_exception(const std::exception& e) { admit::detail::abort_with(e.what()); }
void throw_exception(const std::exception& e, const boost::source_location&) {
  admit::detail::abort_with(e.what());
}
}  // namespace boost
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "no_exceptions_test.cpp must be compiled with -fno-exceptions"
#endif
static_assert(ADMIT_HAS_EXCEPTIONS == 0, "admit must see that exceptions are off");

namespace {

using admit::MiB;
using admit::PoolConfig;

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

void check_equal(const std::optional<std::string>& got, const char* expected, const char* what) {
  if (!got || *got != expected) {
    std::fprintf(stderr, "FAILED: %s\n  expected: %s\n  got:      %s\n", what, expected,
                 got ? got->c_str() : "nullopt");
    ++failures;
  }
}

/// Runs `action` in a child process and checks that it aborts (SIGABRT)
/// after writing `expected` to stderr.
template <class Action>
void check_aborts_with(const char* expected, const char* what, Action action) {
  std::array<int, 2> pipe_fds{};
  if (pipe(pipe_fds.data()) != 0) {
    std::perror("pipe");
    std::exit(2);
  }
  const pid_t child = fork();
  if (child < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (child == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    action();
    std::_Exit(0);  // did not abort: the parent reports it
  }
  close(pipe_fds[1]);
  std::string output;
  std::array<char, 512> buffer{};
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buffer.data(), buffer.size());
    if (n <= 0) break;
    output.append(buffer.data(), static_cast<std::size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  if (!aborted || output.find(expected) == std::string::npos) {
    std::fprintf(stderr, "FAILED: %s\n  expected an abort with: %s\n  got %s, stderr: %s\n", what,
                 expected, aborted ? "an abort" : "no abort", output.c_str());
    ++failures;
  }
}

void validation_errors_name_the_field() {
  check(!admit::validation_error({.memory_budget = 200 * MiB, .slots = 8}),
        "a valid configuration has no validation error");
  check_equal(admit::validation_error({.memory_budget = 0, .slots = 8}),
              "admit::PoolConfig::memory_budget must be in 1..8796093022207 bytes, got 0",
              "memory_budget 0");
  check_equal(admit::validation_error({.memory_budget = MiB, .slots = 0}),
              "admit::PoolConfig::slots must be in 1..1048575, got 0", "slots 0");
  check_equal(admit::validation_error(
                  {.memory_budget = MiB, .slots = 1, .fairness = static_cast<admit::Fairness>(9)}),
              "admit::PoolConfig::fairness must be Fairness::fifo, Fairness::barging or "
              "Fairness::lanes, got 9",
              "fairness out of range");

  const std::array<admit::Tier, 2> bad_tiers{{{admit::GiB, 120}, {admit::Tier::unbounded, 5}}};
  check_equal(admit::TieredPolicy::validation_error(bad_tiers),
              "TieredPolicy: tiers[0].percent must be in 0..100, got 120", "tier percent");
  const std::array<admit::Tier, 1> good_tiers{{{admit::Tier::unbounded, 10}}};
  check(!admit::TieredPolicy::validation_error(good_tiers), "a valid tier table");
  check_equal(admit::FlatPolicy::validation_error(101),
              "FlatPolicy: percent must be in 0..100, got 101", "flat percent");
  check(!admit::FlatPolicy::validation_error(100), "flat 100 % is valid");
}

void mistakes_abort_with_the_message() {
  check_aborts_with("admit::PoolConfig::slots must be in 1..1048575, got 0",
                    "an invalid PoolConfig aborts",
                    [] { const admit::SlotPool<> pool{{.memory_budget = MiB, .slots = 0}}; });
  check_aborts_with("admit::PoolConfig::memory_budget must be in 1..8796093022207 bytes, got 0",
                    "set_memory_budget(0) aborts", [] {
                      admit::SlotPool<> pool{{.memory_budget = MiB, .slots = 1}};
                      pool.set_memory_budget(0);
                    });
  check_aborts_with("TieredPolicy: tiers[0].below must be Tier::unbounded",
                    "a tier table without an unbounded last tier aborts", [] {
                      const std::array<admit::Tier, 1> tiers{{{MiB, 10}}};
                      const admit::TieredPolicy policy{tiers};
                    });
  check_aborts_with("FlatPolicy: percent must be in 0..100, got 200", "FlatPolicy{200} aborts",
                    [] { const admit::FlatPolicy policy{200}; });
  check_aborts_with("admit: Admission::value() called on a refused admission (too_large)",
                    "value() on a refusal aborts", [] {
                      admit::SlotPool<admit::FixedPolicy> pool{{.memory_budget = MiB, .slots = 1},
                                                               admit::FixedPolicy{2 * MiB}};
                      admit::Admission refused = pool.try_acquire(1);
                      const admit::SlotReservation r = std::move(refused).value();
                    });
}

// read_memory_facts() has no try block to lean on here: it must still answer.
void memory_facts_are_read() {
#if defined(__linux__)
  const std::optional<admit::MemoryFacts> facts = admit::read_memory_facts();
  check(facts.has_value() && facts->limit_bytes > 0, "read_memory_facts() reads this machine");
#endif
  check(!admit::read_memory_facts("/admit-no-such-root").has_value(),
        "read_memory_facts() finds nothing under a missing root");
}

void the_pool_works() {
  admit::SlotPool<> pool{{.memory_budget = 200 * MiB, .slots = 2}};
  {
    admit::Admission a = pool.try_acquire(10 * MiB);
    check(a.has_value() && a->bytes() == 2 * MiB, "10 MiB reserves 2 MiB");
    admit::SlotReservation r = std::move(a).value();
    check(static_cast<bool>(r.try_grow(MiB)), "try_grow within the budget");
    check(r.shrink(MiB) == MiB, "shrink gives back what was grown");
  }
  admit::SlotPool<> small{{.memory_budget = 50 * MiB, .slots = 1}};
  const admit::Admission refused = small.try_acquire(admit::GiB);  // 5 %: 51.2 MiB
  check(!refused && refused.error().reason == admit::Reason::too_large, "1 GiB is too large");
  int calls = 0;
  const admit::Ticket ticket = pool.async_acquire(MiB, [&](admit::Admission a) {
    ++calls;
    check(a.has_value(), "async_acquire on an idle pool is admitted");
  });
  check(calls == 1 && static_cast<bool>(ticket), "the handler ran once, at once");
  check(pool.stats().bytes_in_use == 0 && pool.stats().slots_in_use == 0, "everything came back");
#if defined(ADMIT_TEST_FMT)
  check(fmt::format("{}", refused.error()) ==
            "upload of 1 GiB needs 51.2 MiB, more than the whole budget of 50 MiB",
        "fmt formats a rejection");
  check(fmt::format("{}", admit::ByteSize{2'530'644'380}) == "2.36 GiB", "fmt formats a ByteSize");
#endif
}

#if defined(ADMIT_TEST_ASIO)
void asio_works() {
  admit::SlotPool<> pool{{.memory_budget = 200 * MiB, .slots = 1}};
  boost::asio::io_context io;
  std::optional<admit::Admission> first;
  admit::asio::async_acquire(pool, MiB, boost::asio::bind_executor(io, [&](admit::Admission a) {
                               first.emplace(std::move(a));
                             }));
  check(!first, "never completes inside the initiating call");
  io.run();
  check(first && first->has_value(), "admitted through admit::asio");

  // The only slot is held, so this waits until cancelled.
  boost::asio::cancellation_signal cancel;
  std::optional<admit::Admission> second;
  admit::asio::async_acquire(
      pool, MiB,
      boost::asio::bind_cancellation_slot(
          cancel.slot(), boost::asio::bind_executor(
                             io, [&](admit::Admission a) { second.emplace(std::move(a)); })));
  io.restart();
  io.poll();
  check(!second, "waits while the slot is held");
  cancel.emit(boost::asio::cancellation_type::terminal);
  io.run();
  check(second && !second->has_value() && second->error().reason == admit::Reason::cancelled,
        "per-operation cancellation answers cancelled");
  first.reset();
  check(pool.stats().slots_in_use == 0, "everything came back");
}
#endif

}  // namespace

int main() {
  // Forks first, while the process has a single thread.
  mistakes_abort_with_the_message();
  validation_errors_name_the_field();
  the_pool_works();
  memory_facts_are_read();
#if defined(ADMIT_TEST_ASIO)
  asio_works();
#endif
  if (failures != 0) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::puts("no_exceptions_test: all checks passed");
  return 0;
}
