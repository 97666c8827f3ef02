// policy_demo: one large upload under the old flat 10 % and under the default tiers.
//
// A server with 200 MiB free for uploads and 8 slots receives uploads of
// 10 MiB, 500 MiB and 2,530,644,380 bytes. Under the old flat 10 % estimate
// (admit::FlatPolicy{10}) the big one asks for 241 MiB and is refused at once,
// too_large, with a sentence that says why; under the default tiers
// (admit::TieredPolicy) it reserves 100 MiB and is admitted. Each upload is
// tried on an idle pool, so the outcome shows the policy, not the queue. The
// last line shows that the default tiers are not monotonic.
//
// Run it with `scripts/demo`, or build the admit_policy_demo target and run it.
// It exits 1 if an outcome differs from the figures above, so running it as a
// test means something.
#include <admit/admit.hpp>
#include <admit/fmt.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

constexpr std::uint64_t large_upload = 2'530'644'380;
constexpr std::uint64_t uploads[] = {10 * admit::MiB, 500 * admit::MiB, large_upload};
constexpr admit::PoolConfig config{.memory_budget = 200 * admit::MiB, .slots = 8};

bool outcomes_hold = true;

void expect(bool holds, std::string_view what) {
  if (!holds) {
    fmt::print(stderr, "policy_demo: unexpected outcome: {}\n", what);
    outcomes_hold = false;
  }
}

/// ByteSize takes no width, so tables pad its text.
std::string human(std::uint64_t bytes) { return fmt::format("{}", admit::ByteSize{bytes}); }

/// What became of the 2.36 GiB upload.
struct Outcome {
  bool admitted = false;
  admit::Reason reason{};
  std::uint64_t bytes = 0;  ///< reserved if admitted, asked for if refused
};

/// Tries every upload under `policy` on an idle pool; returns the 2.36 GiB upload's outcome.
template <class Policy>
Outcome replay(std::string_view title, const Policy& policy) {
  admit::SlotPool pool{config, policy};
  fmt::print("{}\n", title);
  Outcome large;
  for (const std::uint64_t size : uploads) {
    // Scoped to one iteration: the reservation is released before the next upload.
    const admit::Admission answer = pool.try_acquire(size);
    fmt::print("  {:>8} reserves {:>7}: ", human(size), human(pool.bytes_for(size)));
    if (answer) {
      fmt::print("admitted, {} bytes\n", answer->bytes());
      if (size == large_upload) large = {true, {}, answer->bytes()};
    } else {
      fmt::print("refused {}: {}\n", answer.error().reason, answer.error());
      if (size == large_upload) large = {false, answer.error().reason, answer.error().needed_bytes};
    }
  }
  fmt::print("  stats: {}\n\n", pool.stats());
  return large;
}

}  // namespace

int main() {
  fmt::print("a pool of {} and {} slots; each upload is tried on its own\n\n",
             admit::ByteSize{config.memory_budget}, config.slots);

  const Outcome flat = replay("old: FlatPolicy{10}, 10 % of every size", admit::FlatPolicy{10});
  expect(!flat.admitted && flat.reason == admit::Reason::too_large && flat.bytes == 253'064'438,
         "flat 10 % should refuse the 2.36 GiB upload as too_large, needing 253,064,438 bytes");

  const Outcome tiered = replay(
      "default: TieredPolicy, 20 % below 100 MiB, 10 % below 1 GiB, 5 % at most 100 MiB above",
      admit::TieredPolicy{});
  expect(tiered.admitted && tiered.bytes == 104'857'600,
         "the default tiers should admit the 2.36 GiB upload with 104,857,600 bytes");

  constexpr admit::TieredPolicy tiers;
  expect(tiers.bytes_for(10 * admit::MiB) == 2'097'152 &&
             tiers.bytes_for(500 * admit::MiB) == 52'428'800 &&
             tiers.bytes_for(large_upload) == 104'857'600,
         "the default tiers should reserve 2,097,152 / 52,428,800 / 104,857,600 bytes");

  const std::uint64_t below = tiers.bytes_for(99 * admit::MiB);
  const std::uint64_t at = tiers.bytes_for(100 * admit::MiB);
  fmt::print(
      "not monotonic: 99 MiB reserves {} ({} bytes), "
      "100 MiB reserves {} ({} bytes)\n",
      admit::ByteSize{below}, below, admit::ByteSize{at}, at);
  expect(below > at, "99 MiB should reserve more than 100 MiB under the default tiers");

  return outcomes_hold ? 0 : 1;
}
