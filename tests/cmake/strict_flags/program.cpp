// Uses every part of admit's public API, so that the templates a user would
// instantiate are compiled under the strict flags of CMakeLists.txt next to
// this file. Compiled, not run: the behaviour is tested elsewhere.
#include <admit/admit.hpp>
#include <admit/fmt.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#if defined(ADMIT_STRICT_ASIO)
#include <admit/asio.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#endif

namespace {

using namespace std::chrono_literals;

constexpr admit::TieredPolicy custom{{64 * admit::MiB, 25},
                                     {admit::Tier::unbounded, 10, 256 * admit::MiB}};
static_assert(custom.bytes_for(admit::GiB) == 107'374'182);  // 10 %, under the cap

template <admit::MemoryPolicy Policy>
std::uint64_t exercise(admit::SlotPool<Policy>& pool, std::uint64_t size) {
  std::uint64_t total = pool.bytes_for(size) + pool.memory_budget() + pool.slots();
  admit::Admission admission = pool.try_acquire(size);
  if (!admission) {
    const admit::Rejection& r = admission.error();
    total += r.needed_bytes + r.available_bytes + r.slots_in_use + r.slots;
    total += admit::is_permanent(r.reason) ? 1u : 0u;
    total += admit::to_string(r.reason).size();
    total += fmt::format("{} {} {:>12}", r, admit::ByteSize{r.needed_bytes}, r.reason).size();
    return total;
  }
  total += admission->bytes() + (*admission).slot() + admission.value().declared_size();
  admit::SlotReservation reservation = std::move(admission).value();
  if (const admit::GrowResult grown = reservation.try_grow(admit::MiB); !grown) {
    total += grown.error().needed_bytes;
  }
  total += reservation.shrink(admit::KiB);
  admit::SlotReservation other;
  other = std::move(reservation);
  total += other ? 1u : 0u;
  other.release();

  const admit::Admission waited = pool.acquire_for(size, 10ms);
  total += waited.has_value() ? 1u : 0u;
  const admit::Admission until = pool.acquire(size, std::chrono::steady_clock::now() + 1ms);
  total += until ? 1u : 0u;

  admit::Ticket ticket = pool.async_acquire(size, [](admit::Admission a) {
    if (a) a->release();
  });
  total += ticket.cancel() ? 1u : 0u;
  ticket =
      pool.async_acquire_for(size, 5ms, [&total](admit::Admission&& a) { total += a ? 1u : 0u; });
  ticket =
      pool.async_acquire(size, std::chrono::steady_clock::now() + 5ms, [](admit::Admission) {});
  const admit::Stats stats = pool.stats();
  total += stats.bytes_in_use + stats.peak_bytes_in_use + stats.admitted + stats.waiters;
  total += stats.rejected.total() + stats.rejected[admit::Reason::timeout];
  total += fmt::format("{}", stats).size();
  return total;
}

}  // namespace

int main() {
  static_assert(admit::DefaultPolicy{}.bytes_for(10 * admit::MiB) == 2'097'152);
  const std::array<admit::Tier, 2> table{{{admit::GiB, 10}, {admit::Tier::unbounded, 5}}};
  if (admit::TieredPolicy::validation_error(table)) return 1;
  if (admit::FlatPolicy::validation_error(10)) return 1;
  constexpr admit::PoolConfig config{.memory_budget = 200 * admit::MiB,
                                     .slots = 8,
                                     .max_waiters = 4,
                                     .fairness = admit::Fairness::barging};
  if (admit::validation_error(config)) return 1;
  constexpr admit::PoolConfig lanes{.memory_budget = 200 * admit::MiB,
                                    .slots = 8,
                                    .fairness = admit::Fairness::lanes,
                                    .max_head_wait = std::chrono::milliseconds{250},
                                    .max_pass_percent = 30};
  if (admit::validation_error(lanes)) return 1;
  const std::optional<admit::MemoryFacts> facts = admit::read_memory_facts();
  const std::uint64_t budget =
      facts ? admit::budget_for(*facts, {.percent = 80, .reserve_bytes = 64 * admit::MiB}) : 0;
  if (facts && (admit::to_string(facts->source).empty() || facts->usage_bytes + budget == 0)) {
    return 1;
  }

  admit::SlotPool<> tiered{config};
  admit::SlotPool<admit::TieredPolicy> runtime{config, admit::TieredPolicy{std::span{table}}};
  admit::SlotPool flat{config, admit::FlatPolicy{10}};
  admit::SlotPool fixed{config, admit::FixedPolicy{8 * admit::MiB}};
  std::uint64_t total = exercise(tiered, 2'530'644'380) + exercise(runtime, admit::GiB) +
                        exercise(flat, 10 * admit::MiB) + exercise(fixed, 1);
  total += flat.policy().percent() + fixed.policy().bytes() + custom.tiers().size();

#if defined(ADMIT_STRICT_ASIO)
  namespace net = boost::asio;
  net::io_context io;
  net::cancellation_signal cancel;
  admit::asio::async_acquire(tiered, admit::MiB,
                             net::bind_cancellation_slot(cancel.slot(), [](admit::Admission) {}));
  admit::asio::async_acquire(tiered, admit::MiB, std::chrono::steady_clock::now() + 1s,
                             [](admit::Admission) {});
  net::co_spawn(
      io,
      [&tiered]() -> net::awaitable<std::uint64_t> {
        admit::Admission a =
            co_await admit::asio::async_acquire_for(tiered, admit::MiB, 1s, net::use_awaitable);
        co_return a ? a->bytes() : 0u;
      },
      net::detached);
  cancel.emit(net::cancellation_type::terminal);
  io.run();
#endif

  tiered.set_memory_budget(100 * admit::MiB);
  tiered.close();
  const bool idle = tiered.wait_idle(std::chrono::steady_clock::now() + 1s) && tiered.closed();
  return idle && total != 0 ? 0 : 1;
}
