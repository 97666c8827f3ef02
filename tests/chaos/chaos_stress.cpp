// tests/chaos/chaos_stress.cpp - every SlotPool operation at once on one pool, with
// the contract's invariants checked while it runs and at the end.
//
// What it proves
//   That the guarantees of pool.hpp, reservation.hpp, ticket.hpp and
//   stats.hpp hold when everything races everything: try_acquire; acquire
//   and acquire_for with expired, 1 ms and few-ms deadlines; async_acquire
//   with and without deadlines, cancelled from the asking thread and from
//   others; try_grow, shrink, release; reservations moved between holders
//   (construction, assignment onto empty and onto held ones) and handed to
//   other threads; set_label and reservations() with tracking on; while a
//   controller moves the budget up and down (below the bytes in use too) and
//   toggles pressure, and finally close() while all of that still runs. In
//   each fairness mode: fifo, barging, and lanes in two settings, one whose
//   windows close quickly on the real clock (2 ms, the whole head's bytes)
//   and one with a small share and a long wait (25 %, 500 ms) on a fake
//   clock (lanes.hpp) that the controller moves forward in jumps.
//
// How
//   Each run builds one pool (FlatPolicy{100}: a reservation's bytes are its
//   declared size, so every figure is checkable) and starts T worker threads,
//   each with its own PRNG seeded from --seed, doing a random operation mix; a
//   controller thread (budget, pressure); an observer thread (stats(),
//   reservations()); a watchdog that aborts when nothing progresses for 60 s.
//   At 90 % of the operations the main thread calls close(); the workers go
//   on to the end, give everything back and wait for their async answers;
//   then the main thread empties the hand-over boxes and calls wait_idle.
//   --seed N fixes each thread's choices, not the interleaving: a failure is
//   reproduced by rerunning with the N it printed, possibly many times.
//
// Checked throughout (each failure is a violation: counted, the first 25 printed)
//   - slots_in_use <= slots, waiters <= max_waiters; bytes_in_use, the
//     peaks and the bytes our live reservations hold (our own sum of their
//     bytes(), which never runs ahead of the pool's) <= the largest budget
//     set so far; admitted and each refusal count never go down.
//   - Budget in force: after the controller sets budget B and every worker
//     call that could admit on a stale budget (try_acquire, acquire,
//     async_acquire, try_grow: they read the budget once, before their CAS)
//     and was in flight then has returned, once a snapshot shows
//     bytes_in_use <= B, no later snapshot before the next change shows more.
//     (Right after a cut below what is in use, more is in use by design;
//     grants to waiters read the budget under the pool's mutex, as
//     set_memory_budget writes it, so they are covered from the start.)
//   - No slot index is held by two live reservations: a per-slot flag, set
//     with exchange on every admission (it must have been clear) and
//     cleared before every give-back.
//   - Every admission: a held reservation of the asked size on a valid slot;
//     never from an expired deadline, never for a request made after close()
//     returned, never by a call made entirely while pressure was on.
//   - Every refusal: a reason that request can get (timeout only with a
//     deadline, and not before it; cancelled only if cancel() was called on
//     it; closed only once close() is under way; pressure only for
//     try_acquire and try_grow and only if pressure was on at some point of
//     the call; no_slot only with every slot in use; too_large only when
//     larger than the budget it names; with barging, no_memory only when it
//     does not fit in what is free, as fifo and lanes keep free bytes for
//     waiters), figures that add up, and closed for every request made
//     after close() returned.
//   - Every async handler is called exactly once per request; requests with
//     an expired deadline or made after close are answered before
//     async_acquire returns; a cancel() that returns true has run the
//     handler with cancelled before it returns; at most one cancel of a
//     request wins, and it wins exactly when the handler got cancelled.
//   - try_grow and shrink change bytes() by exactly what they report; grow
//     by 0 always succeeds on a held reservation; a held reservation's grow
//     is never refused with closed, an empty one's always is; with barging,
//     no_memory only when the extra bytes are not free.
//   - Moves carry slot, bytes and size and leave the source empty.
//   - Once close() has returned, nobody waits (waiters, waiting_bytes 0).
//   - With tracking on, each of a worker's reservations is in
//     reservations() with its exact bytes and size; records are in slot
//     order, within the limits, and labels name their own slot.
// Checked at the end
//   wait_idle returned true; bytes_in_use, slots_in_use, waiters,
//   waiting_bytes and double_releases are 0; stats().admitted and each
//   refusal count equal ours; every async request was answered; a
//   try_acquire is refused with closed; reservations() is empty. Blocking
//   calls return because the watchdog would abort otherwise. Runs of at
//   least coverage_ops operations on coverage_threads threads or more must
//   also have seen every refusal reason but queue_full, every kind of
//   admission, cancels won on both threads, budgets cut below use and
//   budgets that settled; a lanes run on the fake clock, steps of it past
//   max_head_wait and the pool reading it.
// Lanes has no check of its own: which request is the head, when its window
//   opened and what passed it are known only under the pool's mutex, so
//   whatever another thread sees (stats(), head_waiter_needs(), its own
//   requests' state) may be stale by the time a request passes or not; and
//   its time bound assumes an unchanged budget, no pressure and a bound on
//   how long uploads hold, which this test breaks on purpose. It must keep
//   every guarantee FIFO keeps, which is what the checks above are;
//   pool_lanes_test.cpp checks the window and the share one step at a time.
//
// Usage: admit_chaos_stress [--ops N] [--threads T] [--seed S]
//                           [--fairness fifo|barging|lanes|all] [--quiet] [--help]
//   N operations in all (default 1,000,000), split over the runs: one per
//   fairness setting (lanes is two; default all four), each once untracked
//   and once with track_reservations. A setting's runs have the same seeds
//   whichever --fairness picks them: a failure in one reruns on its own with
//   --fairness and a quarter of N for each setting picked (fifo: N/4; lanes,
//   two settings: N/2), which gives each run as many operations as before.
//   Memory does not grow with N; every wait in it has a deadline.
//
// Where (all in tests/chaos/)
//   load.hpp          the figures of the pool and the load
//   checks.hpp        violations, progress, the watchdog; how a request was
//                     made and which refusals it may get
//   run.hpp           a run's shared state: the pool, our books, the hand-over
//                     boxes, and the checks of every admission and refusal
//   worker.hpp        a worker's loop and its operations on held reservations
//   worker_async.hpp  its async requests, cancels and lent tickets
//   controller.hpp    the controller (budget, pressure, the lanes clock) and
//                     the observer
//   lanes.hpp         the fairness settings of the runs; the fake lanes clock
//   chaos_stress.cpp  a run and its final checks, the arguments, main()
#include <admit/admit.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "checks.hpp"
#include "controller.hpp"
#include "lanes.hpp"
#include "load.hpp"
#include "run.hpp"
#include "worker.hpp"

namespace admit_chaos {
namespace {

// --- A run ---------------------------------------------------------------------------------------

struct Totals {
  std::uint64_t ops = 0;
  OpCounts counts{};
  std::uint64_t admitted = 0;
  std::array<std::uint64_t, admit::reason_count> rejected{};
  double seconds = 0;
};

/// "; 40 clock steps (9 past the wait), 5000 clock reads" in a run on the fake clock.
std::string clock_figures(const Run& run, std::uint64_t reads_before) {
  if (!run.config.mode.fake_clock) return {};
  char text[128];
  std::snprintf(text, sizeof text, "; %llu clock steps (%llu past the wait), %llu clock reads",
                ull(run.clock_steps.load()), ull(run.clock_steps_past_wait.load()),
                ull(lanes_clock_reads.load() - reads_before));
  return text;
}

/// "; 6 partitions (3 added), 900 refused by one, 3000 bypassed" in a run with partitions.
std::string partition_figures(const Run& run) {
  if (!run.config.partitions) return {};
  char text[192];
  std::snprintf(text, sizeof text,
                "; %zu partitions (%llu added), %llu refused by one, %llu bypassed",
                run.parts.count(), ull(run.partitions_added.load()),
                ull(run.parts.refused_by_partition.load()), ull(run.parts.bypassed.load()));
  return text;
}

void run_once(const RunConfig& config, unsigned index, const std::string& name, bool quiet,
              Totals& totals) {
  run_name.store(name.c_str());
  stage.store("running");
  const auto began = Clock::now();
  const std::uint64_t thread_seed = splitmix(config.seed + 0x100 * (index + 1));
  const std::uint64_t clock_reads_before = lanes_clock_reads.load();
  Run run{config};
  std::latch start{static_cast<std::ptrdiff_t>(config.threads) + 3};
  std::thread observer{[&] { observe(run, start); }};
  std::thread controller{[&, c = Controller{run, splitmix(thread_seed)}]() mutable { c(start); }};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < config.threads; ++t) {
    workers.emplace_back(
        [&, w = Worker{run, t, splitmix(thread_seed + t + 1)}]() mutable { w(start); });
  }
  start.arrive_and_wait();

  // close() while the workers still run: 90 % of the way, or when all are done.
  const std::uint64_t run_ops = config.ops_per_worker * config.threads;
  const std::uint64_t ops_before = worker_ops.load();
  while (worker_ops.load(std::memory_order_relaxed) - ops_before < run_ops / 10 * 9 &&
         run.workers_done.load() < config.threads) {
    std::this_thread::sleep_for(1ms);
  }
  stage.store("closing");
  run.closing.store(true);
  run.pool.close();
  // release: a worker that reads it asks after close() returned.
  run.closed.store(true, std::memory_order_release);
  // close() answered every waiter, and nobody can queue after it.
  if (const admit::Stats s = run.pool.stats(); s.waiters != 0 || s.waiting_bytes != 0) {
    violation("close() returned with %llu waiters needing %llu bytes still queued", ull(s.waiters),
              ull(s.waiting_bytes));
  }
  stage.store("waiting for the workers to finish");
  for (std::thread& w : workers) w.join();
  run.stop_controller.store(true, std::memory_order_release);
  controller.join();
  run.stop_observer.store(true, std::memory_order_release);
  observer.join();

  stage.store("giving back what the hand-over boxes hold");
  while (SlotReservation r = run.exchange.take()) run.give_back(r);
  while (SlotReservation r = run.delivered.take()) run.give_back(r);
  stage.store("wait_idle");
  const bool idle = run.pool.wait_idle(Clock::now() + idle_limit);
  moved();
  stage.store("final checks");

  if (!idle) {
    violation("wait_idle did not return true within %llds",
              static_cast<long long>(idle_limit.count()));
  }
  if (admit::Admission a = run.pool.try_acquire(0); a || a.error().reason != Reason::closed) {
    violation("try_acquire after close() not refused with closed");
    if (a) run.took(*a, 0, "try_acquire after close()");
  } else {
    run.rejected[static_cast<std::size_t>(Reason::closed)].fetch_add(1);
  }
  const admit::Stats s = run.pool.stats();
  if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.waiters != 0 || s.waiting_bytes != 0 ||
      s.double_releases != 0) {
    violation(
        "at the end: %llu bytes, %u slots in use, %llu waiters needing %llu bytes, %llu double "
        "releases",
        ull(s.bytes_in_use), s.slots_in_use, ull(s.waiters), ull(s.waiting_bytes),
        ull(s.double_releases));
  }
  if (run.held_count.load() != 0 || run.held_bytes.load() != 0) {
    violation("at the end our books still show %llu reservations of %llu bytes",
              ull(run.held_count.load()), ull(run.held_bytes.load()));
  }
  for (std::uint32_t slot = 0; slot < slot_count; ++slot) {
    if (run.owners[slot].load() != 0) violation("at the end slot %u is still marked held", slot);
  }
  if (s.admitted != run.admitted.load()) {
    violation("stats().admitted is %llu; we were handed %llu reservations", ull(s.admitted),
              ull(run.admitted.load()));
  }
  for (std::size_t i = 0; i < admit::reason_count; ++i) {
    const auto reason = static_cast<Reason>(i);
    if (s.rejected[reason] != run.rejected[i].load()) {
      violation("stats() counts %llu refusals with %s; we were told %llu", ull(s.rejected[reason]),
                std::string{to_string(reason)}.c_str(), ull(run.rejected[i].load()));
    }
  }
  if (run.async_answered.load() != run.async_issued.load()) {
    violation("%llu async requests, %llu answered", ull(run.async_issued.load()),
              ull(run.async_answered.load()));
  }
  if (s.peak_slots_in_use > slot_count || s.peak_bytes_in_use > run.largest_budget.load()) {
    violation("peaks: %u slots, %llu bytes", s.peak_slots_in_use, ull(s.peak_bytes_in_use));
  }
  if (!run.pool.reservations().empty()) violation("reservations() not empty at the end");
  run.parts.check_end(s.bypassed);

  const OpCounts& c = run.op_counts;
  if (run_ops >= coverage_ops && config.threads >= coverage_threads) {
    // A chaos run that never reached a state proves nothing about it.
    const auto need = [](std::uint64_t n, const char* what) {
      if (n == 0) violation("not exercised: %s", what);
    };
    for (std::size_t i = 0; i < admit::reason_count; ++i) {
      if (static_cast<Reason>(i) == Reason::queue_full) continue;  // depends on timing
      if (run.rejected[i].load() == 0) {
        violation("not exercised: a refusal with %s",
                  std::string{to_string(static_cast<Reason>(i))}.c_str());
      }
    }
    need(run.admitted_try.load(), "try_acquire admitted");
    need(run.admitted_blocking.load(), "acquire admitted");
    need(run.admitted_async.load(), "async_acquire admitted");
    need(run.own_cancels_won.load(), "a cancel won on the asking thread");
    need(run.lent_cancels_won.load(), "a cancel won through a lent ticket");
    need(run.cut_below_use.load(), "a budget cut below the bytes in use");
    need(run.settled_checks.load(), "a settled budget checked");
    need(run.pressure_cycles.load(), "pressure");
    if (config.tracking) need(run.records_seen.load(), "a record seen by the observer");
    if (config.mode.fake_clock) {
      need(run.clock_steps_past_wait.load(), "a lanes clock step past max_head_wait");
      need(lanes_clock_reads.load() - clock_reads_before, "the pool reading the lanes clock");
    }
    if (config.partitions) {
      need(run.partitions_added.load(), "a partition added while the pool runs");
      need(run.parts.refused_by_partition.load(), "a refusal by a partition's limit");
      need(run.parts.bypassed.load(), "bypass");
    }
  }

  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  totals.ops += run_ops;
  totals.counts.add(c);
  totals.admitted += s.admitted;
  for (std::size_t i = 0; i < admit::reason_count; ++i) {
    totals.rejected[i] += run.rejected[i].load();
  }
  totals.seconds += seconds;
  if (!quiet) {
    std::printf(
        "chaos [%s]: %llu ops on %u threads in %.1f s; admitted %llu (try %llu, blocking %llu, "
        "async %llu); refused %llu; cancels won %llu + %llu lent; %llu budget changes (%llu below "
        "use, %llu settled checks); %llu pressure cycles; %llu snapshots, %llu records%s%s\n",
        name.c_str(), ull(run_ops), config.threads, seconds, ull(s.admitted),
        ull(run.admitted_try.load()), ull(run.admitted_blocking.load()),
        ull(run.admitted_async.load()), ull(s.rejected.total()), ull(run.own_cancels_won.load()),
        ull(run.lent_cancels_won.load()), ull(run.budget_changes.load()),
        ull(run.cut_below_use.load()), ull(run.settled_checks.load()),
        ull(run.pressure_cycles.load()), ull(run.snapshots.load()), ull(run.records_seen.load()),
        clock_figures(run, clock_reads_before).c_str(), partition_figures(run).c_str());
  }
}

// --- Arguments -----------------------------------------------------------------------------------

struct Options {
  std::uint64_t ops = 1'000'000;
  unsigned threads = 4;
  std::uint64_t seed = 1;
  std::vector<std::size_t> settings{0, 1, 2, 3};  // indices into `modes` (lanes.hpp)
  std::vector<bool> partitions{false, true};      // RunConfig::partitions of each setting's runs
  bool quiet = false;
};

constexpr const char* usage_text =
    "usage: admit_chaos_stress [--ops N] [--threads T] [--seed S]\n"
    "                          [--fairness fifo|barging|lanes|all] [--partitions on|off|both]\n"
    "                          [--quiet]\n"
    "  N operations in all (default 1000000) on T worker threads (default 4), split over\n"
    "  one run per fairness setting, each untracked and then tracked. lanes is two\n"
    "  settings: max_head_wait 2 ms, max_pass_percent 100; and 500 ms, 25 % on a fake\n"
    "  clock the controller moves in jumps. all (the default): fifo, barging, lanes.\n"
    "  --partitions on: requests in a few partitions (more added while the pool runs) or\n"
    "  in none, some bypassing; off: none; both (the default): each run off, then on.\n";

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr, "admit_chaos_stress: %s\n%s", problem, usage_text);
  std::exit(2);
}

std::uint64_t number(const char* text, const char* option) {
  std::uint64_t value = 0;
  const char* const end = text + std::strlen(text);
  const auto [at, error] = std::from_chars(text, end, value);
  if (error != std::errc{} || at != end) usage((std::string{option} + " needs a number").c_str());
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (arg == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage(("unknown option or missing value: " + std::string{arg}).c_str());
    const char* const value = argv[++i];
    if (arg == "--ops") {
      o.ops = number(value, "--ops");
      if (o.ops == 0) usage("--ops must be at least 1");
    } else if (arg == "--threads") {
      const std::uint64_t t = number(value, "--threads");
      if (t < 1 || t > 64) usage("--threads must be in 1..64");
      o.threads = static_cast<unsigned>(t);
    } else if (arg == "--seed") {
      o.seed = number(value, "--seed");
    } else if (arg == "--partitions") {
      const std::string_view v = value;
      if (v == "off") {
        o.partitions = {false};
      } else if (v == "on") {
        o.partitions = {true};
      } else if (v == "both") {
        o.partitions = {false, true};
      } else {
        usage("--partitions must be on, off or both");
      }
    } else if (arg == "--fairness") {
      const std::string_view v = value;
      if (v == "fifo") {
        o.settings = {0};
      } else if (v == "barging") {
        o.settings = {1};
      } else if (v == "lanes") {
        o.settings = {2, 3};
      } else if (v == "all") {
        o.settings = {0, 1, 2, 3};
      } else {
        usage("--fairness must be fifo, barging, lanes or all");
      }
    } else {
      usage(("unknown option: " + std::string{arg}).c_str());
    }
  }
  return o;
}

}  // namespace
}  // namespace admit_chaos

int main(int argc, char** argv) {
  using namespace admit_chaos;
  const Options options = parse(argc, argv);
  // Each setting untracked, then tracked; without partitions, then with them.
  const std::uint64_t runs = options.settings.size() * 2 * options.partitions.size();
  const std::uint64_t per_worker = std::max<std::uint64_t>(options.ops / runs / options.threads, 1);
  std::vector<RunConfig> configs;
  std::vector<unsigned> indices;   // fix the seeds: see the file comment
  std::vector<std::string> names;  // before any thread: see run_name
  for (const bool parts : options.partitions) {
    for (const std::size_t m : options.settings) {
      for (const bool tracking : {false, true}) {
        configs.push_back(
            RunConfig{modes[m], tracking, parts, options.threads, per_worker, options.seed});
        // Runs without partitions keep the seeds they had before partitions existed.
        indices.push_back(static_cast<unsigned>((parts ? 8 : 0) + m * 2 + (tracking ? 1 : 0)));
        names.push_back(std::string{modes[m].name} + (tracking ? ", tracked" : ", untracked") +
                        (parts ? ", partitions" : "") + ", seed " + std::to_string(options.seed));
      }
    }
  }
  const Watchdog watchdog;
  Totals totals;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    run_once(configs[i], indices[i], names[i], options.quiet, totals);
  }
  const OpCounts& c = totals.counts;
  std::printf(
      "chaos: %llu ops in %.1f s (seed %llu, %u threads): try_acquire %llu, acquire %llu, "
      "async_acquire %llu, cancel %llu + %llu lent, try_grow %llu, shrink %llu, release %llu, "
      "move %llu, hand-over %llu, delivered %llu, set_label %llu, reservations %llu, bypass %llu\n",
      ull(totals.ops), totals.seconds, ull(options.seed), options.threads, ull(c.try_acquires),
      ull(c.blocking), ull(c.asyncs), ull(c.own_cancels), ull(c.lent_cancels), ull(c.grows),
      ull(c.shrinks), ull(c.releases), ull(c.moves), ull(c.hand_overs), ull(c.deliveries_taken),
      ull(c.labels), ull(c.record_checks), ull(c.bypasses));
  std::printf("chaos: admitted %llu; refused:", ull(totals.admitted));
  for (std::size_t i = 0; i < admit::reason_count; ++i) {
    std::printf(" %s %llu", std::string{to_string(static_cast<Reason>(i))}.c_str(),
                ull(totals.rejected[i]));
  }
  std::printf("\nviolations: %llu\n", ull(violations.load()));
  return violations.load() == 0 ? 0 : 1;
}
