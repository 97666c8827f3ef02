// benchmarks/upload_sim.cpp - admit_upload_sim: replays upload traffic against
// a real admit::SlotPool in simulated time, to compare memory policies.
//
// The traffic: uploads arrive as a Poisson process (--rate per second); sizes
// are lognormal (--median-size, --sigma), which gives the long tail past 2 GiB
// that broke the seed's server; an admitted upload lasts size / --bandwidth
// and holds its reservation until then. A client that is refused gives up at
// once, or, with --wait, waits up to that long for room and then gives up.
//
// The method: a deterministic, single-threaded discrete-event simulation. One
// trace is drawn from --seed and replayed against one SlotPool per policy
// (same budget, slots, fairness, waiter limit), so the policies see exactly
// the same uploads. Events (arrival, end of an upload, end of a client's
// patience) run in order of simulated time, ties in the order they were
// scheduled. Without --wait a client calls try_acquire. With --wait it calls
// pool.async_acquire: an answer that is ready at once comes back inside that
// call; otherwise the handler runs inside the release (at an upload's end)
// that made room, on this same thread, at that simulated time; when the
// client's patience runs out first, ticket.cancel() answers it with
// `cancelled` (shown as "timed out"). Nothing depends on the wall clock, so
// the same flags give the same output, byte for byte.
//
// Printed per policy and size class (< 100 MiB, < 1 GiB, >= 1 GiB): uploads,
// admitted %, refused % by reason; per policy: mean (time-weighted) and peak
// reserved bytes, mean slots in use, and with --wait the p50 / p99 wait of
// the clients that waited and were admitted. At the end every policy's pool
// must be back to zero in use and its counters must match the replay's own
// (DESIGN.md invariants 1 and 2); if not, the simulator fails.
//
// The random numbers come from std::mt19937_64 (fully specified by the
// standard) through our own exponential and Box-Muller transforms (the
// standard distributions' algorithms are left to each library).
#include <admit/admit.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace {

using admit::GiB;
using admit::KiB;
using admit::MiB;
using admit::TiB;

constexpr std::int64_t ns_per_s = 1'000'000'000;

// --- Options -------------------------------------------------------------------

struct PolicySpec {
  std::string name;
  std::variant<admit::TieredPolicy, admit::FlatPolicy, admit::FixedPolicy> policy;
};

struct Options {
  std::uint64_t seed = 1;
  std::uint64_t uploads = 20'000;
  double rate = 0.3;  // arrivals per second
  std::uint64_t budget = 200 * MiB;
  std::uint32_t slots = 8;
  std::uint64_t bandwidth = 10 * MiB;  // bytes per second, per upload
  std::uint64_t median_size = 40 * MiB;
  double sigma = 1.6;
  std::int64_t wait_ns = 0;       // 0: refused clients give up at once
  std::uint32_t max_waiters = 0;  // 0: unlimited
  admit::Fairness fairness = admit::Fairness::fifo;
  std::vector<PolicySpec> policies;  // empty: the three defaults
  bool csv = false;
};

constexpr const char* usage_text = R"(usage: admit_upload_sim [options]

Replays seeded upload traffic against a real admit::SlotPool in simulated time,
once per policy, and prints admitted / refused percentages by reason and size
class, reserved memory and (with --wait) wait times. Deterministic: the same
options give the same output.

  --seed N            random seed of the trace                   (default 1)
  --uploads N         uploads in the trace                       (default 20000)
  --rate R            Poisson arrivals per second                (default 0.3)
  --budget SIZE       the pool's memory budget                   (default 200MiB)
  --slots N           the pool's slots                           (default 8)
  --bandwidth SIZE    bytes per second of one upload             (default 10MiB)
  --median-size SIZE  median upload size (lognormal)             (default 40MiB)
  --sigma S           lognormal sigma: the tail's weight         (default 1.6)
  --wait DURATION     how long a refused client waits for room,
                      through async_acquire; 0 = never waits     (default 0)
  --max-waiters N     PoolConfig::max_waiters; 0 = unlimited     (default 0)
  --fairness F        fifo | barging                             (default fifo)
  --policy P          tiered | flat:PERCENT | fixed:SIZE; repeat to compare
                      (default: flat:10, tiered and fixed:8MiB)
  --csv               one CSV row per policy and size class instead of tables
  --help              this text

SIZE: a byte count with an optional binary unit, e.g. 200MiB, 2GiB, 1.5GiB,
8MiB, 512KiB, 1048576 (B, KiB, MiB, GiB, TiB; "/s" allowed for --bandwidth).
DURATION: a number and a unit, e.g. 2s, 500ms, 1.5s, 2min (ns, us, ms, s,
min); 0 needs no unit.
)";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "admit_upload_sim: %s (see --help)\n", message.c_str());
  std::exit(2);
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return lower(x) == lower(y);
  });
}

/// "12", "1.5": a non-negative decimal number and the text after it.
std::optional<std::pair<long double, std::string_view>> parse_number(std::string_view text) {
  std::size_t i = 0;
  long double value = 0;
  bool digits = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, digits = true) {
    value = value * 10 + (text[i] - '0');
  }
  if (i < text.size() && text[i] == '.') {
    long double scale = 0.1L;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, digits = true) {
      value += (text[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (!digits) return std::nullopt;
  return std::pair{value, text.substr(i)};
}

std::uint64_t parse_size(std::string_view flag, std::string_view text, bool per_second = false) {
  const auto number = parse_number(text);
  if (!number)
    fail(std::string{flag} + ": expected a size such as 200MiB, got '" + std::string{text} + "'");
  std::string_view unit = number->second;
  if (per_second && unit.size() >= 2 && unit.substr(unit.size() - 2) == "/s") {
    unit.remove_suffix(2);
  }
  std::uint64_t scale = 0;
  if (unit.empty() || iequals(unit, "B")) {
    scale = 1;
  } else if (iequals(unit, "KiB")) {
    scale = KiB;
  } else if (iequals(unit, "MiB")) {
    scale = MiB;
  } else if (iequals(unit, "GiB")) {
    scale = GiB;
  } else if (iequals(unit, "TiB")) {
    scale = TiB;
  } else {
    fail(std::string{flag} + ": unknown unit '" + std::string{unit} + "' (B, KiB, MiB, GiB, TiB)");
  }
  const long double bytes = std::floor(number->first * static_cast<long double>(scale));
  if (bytes >= 18446744073709551615.0L)
    fail(std::string{flag} + ": " + std::string{text} + " is too large");
  return static_cast<std::uint64_t>(bytes);
}

std::int64_t parse_duration(std::string_view flag, std::string_view text) {
  const auto number = parse_number(text);
  if (!number)
    fail(std::string{flag} + ": expected a duration such as 2s or 500ms, got '" +
         std::string{text} + "'");
  const std::string_view unit = number->second;
  long double scale = 0;
  if (unit.empty() && number->first == 0) {
    scale = 1;
  } else if (unit == "ns") {
    scale = 1;
  } else if (unit == "us") {
    scale = 1e3L;
  } else if (unit == "ms") {
    scale = 1e6L;
  } else if (unit == "s") {
    scale = 1e9L;
  } else if (unit == "min") {
    scale = 60e9L;
  } else {
    fail(std::string{flag} + ": '" + std::string{text} + "' needs a unit: ns, us, ms, s or min");
  }
  const long double ns = std::round(number->first * scale);
  if (ns > 1e17L) fail(std::string{flag} + ": " + std::string{text} + " is too long");
  return static_cast<std::int64_t>(ns);
}

template <class Int>
Int parse_int(std::string_view flag, std::string_view text, Int min, Int max) {
  Int value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    fail(std::string{flag} + ": expected an integer in " + std::to_string(min) + ".." +
         std::to_string(max) + ", got '" + std::string{text} + "'");
  }
  return value;
}

double parse_positive(std::string_view flag, std::string_view text, std::string_view suffix = {}) {
  if (!suffix.empty() && text.size() > suffix.size() &&
      text.substr(text.size() - suffix.size()) == suffix) {
    text.remove_suffix(suffix.size());
  }
  const auto number = parse_number(text);
  if (!number || !number->second.empty() || number->first <= 0) {
    fail(std::string{flag} + ": expected a positive number, got '" + std::string{text} + "'");
  }
  return static_cast<double>(number->first);
}

std::string format_bytes(double bytes);

PolicySpec parse_policy(std::string_view text) {
  if (text == "tiered") return {"tiered", admit::TieredPolicy{}};
  if (text.starts_with("flat:")) {
    std::string_view percent = text.substr(5);
    if (percent.ends_with("%")) percent.remove_suffix(1);
    const auto p = parse_int<std::uint32_t>("--policy flat", percent, 0, 100);
    return {"flat:" + std::to_string(p) + "%", admit::FlatPolicy{p}};
  }
  if (text.starts_with("fixed:")) {
    const std::uint64_t bytes = parse_size("--policy fixed", text.substr(6));
    std::string name = format_bytes(static_cast<double>(bytes));
    name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
    return {"fixed:" + name, admit::FixedPolicy{bytes}};
  }
  fail("--policy: expected tiered, flat:PERCENT or fixed:SIZE, got '" + std::string{text} + "'");
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
    if (arg == "--csv") {
      o.csv = true;
      continue;
    }
    std::string_view value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fail(std::string{arg} + " needs a value");
    }
    if (arg == "--seed") {
      o.seed = parse_int<std::uint64_t>(arg, value, 0, std::numeric_limits<std::uint64_t>::max());
    } else if (arg == "--uploads") {
      o.uploads = parse_int<std::uint64_t>(arg, value, 1, 10'000'000);
    } else if (arg == "--rate") {
      o.rate = parse_positive(arg, value, "/s");
    } else if (arg == "--budget") {
      o.budget = parse_size(arg, value);
    } else if (arg == "--slots") {
      o.slots = parse_int<std::uint32_t>(arg, value, 1, admit::PoolConfig::max_slots);
    } else if (arg == "--bandwidth") {
      o.bandwidth = parse_size(arg, value, /*per_second=*/true);
      if (o.bandwidth == 0) fail("--bandwidth must be positive");
    } else if (arg == "--median-size") {
      o.median_size = parse_size(arg, value);
      if (o.median_size == 0) fail("--median-size must be positive");
    } else if (arg == "--sigma") {
      const auto number = parse_number(value);
      if (!number || !number->second.empty() || number->first > 10) {
        fail("--sigma: expected a number in 0..10, got '" + std::string{value} + "'");
      }
      o.sigma = static_cast<double>(number->first);
    } else if (arg == "--wait") {
      o.wait_ns = parse_duration(arg, value);
    } else if (arg == "--max-waiters") {
      o.max_waiters =
          parse_int<std::uint32_t>(arg, value, 0, std::numeric_limits<std::uint32_t>::max());
    } else if (arg == "--fairness") {
      if (value == "fifo") {
        o.fairness = admit::Fairness::fifo;
      } else if (value == "barging") {
        o.fairness = admit::Fairness::barging;
      } else {
        fail("--fairness: expected fifo or barging, got '" + std::string{value} + "'");
      }
    } else if (arg == "--policy") {
      o.policies.push_back(parse_policy(value));
    } else {
      fail("unknown option '" + std::string{arg} + "'");
    }
  }
  if (o.budget == 0 || o.budget > admit::PoolConfig::max_memory_budget) {
    fail("--budget must be in 1.." + std::to_string(admit::PoolConfig::max_memory_budget) +
         " bytes");
  }
  if (o.policies.empty()) {
    o.policies.push_back(parse_policy("flat:10"));
    o.policies.push_back(parse_policy("tiered"));
    o.policies.push_back(parse_policy("fixed:8MiB"));
  }
  return o;
}

// --- Formatting ----------------------------------------------------------------

std::string printf_string(const char* format, auto... args) {
  std::array<char, 128> buffer{};
  const int n = std::snprintf(buffer.data(), buffer.size(), format, args...);
  return std::string{
      buffer.data(),
      n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), buffer.size() - 1)};
}

std::string format_bytes(double bytes) {
  constexpr std::array<const char*, 5> units{"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < units.size()) {
    bytes /= 1024;
    ++u;
  }
  // Exact figures print as integers ("200 MiB"), others with two decimals,
  // so that 199.99 MiB never reads as the whole 200 MiB.
  if (u == 0 || bytes == std::floor(bytes)) return printf_string("%.0f %s", bytes, units[u]);
  return printf_string("%.2f %s", bytes, units[u]);
}

std::string format_duration(std::int64_t ns) {
  if (ns != 0 && ns % ns_per_s == 0 && ns < 600 * ns_per_s) {
    return printf_string("%lld s", static_cast<long long>(ns / ns_per_s));
  }
  if (ns != 0 && ns % 1'000'000 == 0 && ns < ns_per_s) {
    return printf_string("%lld ms", static_cast<long long>(ns / 1'000'000));
  }
  if (ns < 1'000'000) return printf_string("%.0f us", static_cast<double>(ns) / 1e3);
  if (ns < ns_per_s) return printf_string("%.0f ms", static_cast<double>(ns) / 1e6);
  if (ns < 600 * ns_per_s) return printf_string("%.2f s", static_cast<double>(ns) / 1e9);
  return printf_string("%.1f h", static_cast<double>(ns) / 3.6e12);
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  return printf_string("%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

// --- The trace -------------------------------------------------------------------

struct Upload {
  std::int64_t arrival_ns;
  std::uint64_t size;
  std::int64_t duration_ns;
};

/// A uniform double in (0, 1) from the top 53 bits.
double uniform(std::mt19937_64& random) {
  return (static_cast<double>(random() >> 11) + 0.5) * 0x1p-53;
}

std::vector<Upload> make_trace(const Options& o) {
  constexpr double pi = 3.14159265358979323846;
  constexpr double max_size = static_cast<double>(std::uint64_t{1} << 50);  // 1 PiB
  std::mt19937_64 random{o.seed};
  std::vector<Upload> trace;
  trace.reserve(o.uploads);
  double now_s = 0;
  for (std::uint64_t i = 0; i < o.uploads; ++i) {
    now_s += -std::log(uniform(random)) / o.rate;  // exponential inter-arrival
    // Box-Muller: one standard normal from two uniforms.
    const double normal =
        std::sqrt(-2 * std::log(uniform(random))) * std::cos(2 * pi * uniform(random));
    const double size =
        std::clamp(static_cast<double>(o.median_size) * std::exp(o.sigma * normal), 1.0, max_size);
    const double duration_s = size / static_cast<double>(o.bandwidth);
    trace.push_back({static_cast<std::int64_t>(std::llround(now_s * 1e9)),
                     static_cast<std::uint64_t>(size),
                     std::max<std::int64_t>(1, std::llround(std::min(duration_s, 1e9) * 1e9))});
  }
  return trace;
}

// --- Results ---------------------------------------------------------------------

constexpr std::size_t class_count = 3;
constexpr std::array<const char*, class_count> class_names{"< 100 MiB", "< 1 GiB", ">= 1 GiB"};
/// A subset of ">= 1 GiB" shown on its own row: under flat 10 % of a 200 MiB
/// budget every one of these is too_large (10 % of 2000 MiB is the budget).
constexpr std::uint64_t huge_size = 2 * GiB;
constexpr const char* huge_name = "(>= 2 GiB)";

std::size_t size_class(std::uint64_t size) {
  if (size < 100 * MiB) return 0;
  if (size < GiB) return 1;
  return 2;
}

/// What a client saw. `timed_out` merges Reason::cancelled (our ticket.cancel()
/// when its patience ran out) and Reason::timeout (which a pool deadline would give).
enum class Outcome : std::uint8_t {
  admitted,
  too_large,
  no_slot,
  no_memory,
  queue_full,
  timed_out,
  closed
};
constexpr std::size_t outcome_count = 7;
constexpr std::array<const char*, outcome_count> outcome_names{
    "admitted", "too_large", "no_slot", "no_memory", "queue_full", "timed_out", "closed"};

Outcome outcome_of(admit::Reason reason) {
  switch (reason) {
    case admit::Reason::too_large:
      return Outcome::too_large;
    case admit::Reason::no_slot:
      return Outcome::no_slot;
    case admit::Reason::no_memory:
      return Outcome::no_memory;
    case admit::Reason::queue_full:
      return Outcome::queue_full;
    case admit::Reason::timeout:
    case admit::Reason::cancelled:
      return Outcome::timed_out;
    case admit::Reason::closed:
      return Outcome::closed;
  }
  return Outcome::closed;
}

struct Counts {
  std::uint64_t uploads = 0;
  std::array<std::uint64_t, outcome_count> outcomes{};
};

struct Result {
  std::string policy;
  std::array<Counts, class_count> by_class{};
  Counts huge;  // >= huge_size, also counted in by_class[2]
  Counts all;
  double mean_bytes = 0;
  std::uint64_t peak_bytes = 0;
  double mean_slots = 0;
  std::uint64_t waited = 0;            // clients that were queued
  std::vector<std::int64_t> waits_ns;  // of those, the admitted ones
};

// --- The simulation ----------------------------------------------------------------

template <class Policy>
class Simulation {
 public:
  Simulation(const Options& options, const std::vector<Upload>& trace, Policy policy)
      : options_{options},
        trace_{trace},
        pool_{{.memory_budget = options.budget,
               .slots = options.slots,
               .max_waiters = options.max_waiters,
               .fairness = options.fairness},
              std::move(policy)},
        clients_(trace.size()) {
    // Arrivals, ends and timeouts: at most three events per upload. Reserved
    // so that a handler never allocates while the pool calls it.
    std::vector<Event> storage;
    storage.reserve(3 * trace.size());
    events_ = Queue{std::greater<>{}, std::move(storage)};
  }

  Result run(std::string name) {
    result_.policy = std::move(name);
    for (std::uint32_t id = 0; id < trace_.size(); ++id) {
      schedule(trace_[id].arrival_ns, Kind::arrival, id);
    }
    std::int64_t start = trace_.empty() ? 0 : trace_.front().arrival_ns;
    now_ = start;
    double byte_ns = 0;
    double slot_ns = 0;
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      // What was in use since the last event, for the time-weighted means.
      const admit::Stats before = pool_.stats();
      byte_ns += static_cast<double>(before.bytes_in_use) * static_cast<double>(e.time - now_);
      slot_ns += static_cast<double>(before.slots_in_use) * static_cast<double>(e.time - now_);
      now_ = e.time;
      switch (e.kind) {
        case Kind::arrival:
          arrive(e.id);
          break;
        case Kind::end:
          clients_[e.id].reservation.release();
          break;
        case Kind::patience:
          if (clients_[e.id].waiting) clients_[e.id].ticket.cancel();
          break;
      }
    }
    const double span = static_cast<double>(std::max<std::int64_t>(1, now_ - start));
    result_.mean_bytes = byte_ns / span;
    result_.mean_slots = slot_ns / span;
    check();
    return std::move(result_);
  }

 private:
  enum class Kind : std::uint8_t { arrival, end, patience };
  struct Event {
    std::int64_t time;
    std::uint64_t sequence;  // ties run in the order they were scheduled
    Kind kind;
    std::uint32_t id;
    friend bool operator>(const Event& a, const Event& b) noexcept {
      return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
    }
  };
  using Queue = std::priority_queue<Event, std::vector<Event>, std::greater<>>;

  struct Client {
    admit::SlotReservation reservation;
    admit::Ticket ticket;
    bool waiting = false;  // queued in the pool, not answered yet
    bool queued = false;   // was queued at some point
  };

  void schedule(std::int64_t time, Kind kind, std::uint32_t id) {
    events_.push({time, next_sequence_++, kind, id});
  }

  void arrive(std::uint32_t id) {
    const std::uint64_t size = trace_[id].size;
    ++result_.all.uploads;
    ++result_.by_class[size_class(size)].uploads;
    if (size >= huge_size) ++result_.huge.uploads;
    if (options_.wait_ns == 0) {
      answer(id, pool_.try_acquire(size));
      return;
    }
    Client& client = clients_[id];
    client.waiting = true;
    // An immediate answer (admitted, too_large, queue_full) runs the handler
    // before async_acquire returns; otherwise it runs inside a later release
    // or our cancel(), on this thread, at that event's simulated time.
    client.ticket = pool_.async_acquire(
        size, [this, id](admit::Admission admission) { answer(id, std::move(admission)); });
    if (client.waiting) {
      client.queued = true;
      ++result_.waited;
      schedule(now_ + options_.wait_ns, Kind::patience, id);
    }
  }

  void answer(std::uint32_t id, admit::Admission admission) {
    Client& client = clients_[id];
    client.waiting = false;
    const Upload& upload = trace_[id];
    const Outcome outcome = admission ? Outcome::admitted : outcome_of(admission.error().reason);
    ++result_.all.outcomes[static_cast<std::size_t>(outcome)];
    ++result_.by_class[size_class(upload.size)].outcomes[static_cast<std::size_t>(outcome)];
    if (upload.size >= huge_size) ++result_.huge.outcomes[static_cast<std::size_t>(outcome)];
    if (!admission) return;
    if (client.queued) result_.waits_ns.push_back(now_ - upload.arrival_ns);
    client.reservation = std::move(admission).value();
    schedule(now_ + upload.duration_ns, Kind::end, id);
  }

  /// Invariants 1 and 2 of DESIGN.md, and the pool's counters against ours.
  void check() {
    const admit::Stats s = pool_.stats();
    const auto count = [&](Outcome o) { return result_.all.outcomes[static_cast<std::size_t>(o)]; };
    std::string problem;
    if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.waiters != 0) {
      problem = "the pool is not empty at the end";
    } else if (s.peak_bytes_in_use > options_.budget || s.peak_slots_in_use > options_.slots) {
      problem = "the pool went past its budget or slots";
    } else if (s.admitted != count(Outcome::admitted) ||
               s.rejected.too_large != count(Outcome::too_large) ||
               s.rejected.no_slot != count(Outcome::no_slot) ||
               s.rejected.no_memory != count(Outcome::no_memory) ||
               s.rejected.queue_full != count(Outcome::queue_full) ||
               s.rejected.timeout + s.rejected.cancelled != count(Outcome::timed_out)) {
      problem = "the pool's counters disagree with the replay";
    }
    if (!problem.empty()) {
      std::fprintf(stderr, "admit_upload_sim: policy %s: %s\n", result_.policy.c_str(),
                   problem.c_str());
      std::exit(1);
    }
    result_.peak_bytes = s.peak_bytes_in_use;
  }

  const Options& options_;
  const std::vector<Upload>& trace_;
  admit::SlotPool<Policy> pool_;
  std::vector<Client> clients_;
  Queue events_;
  std::uint64_t next_sequence_ = 0;
  std::int64_t now_ = 0;
  Result result_;
};

// --- Output ------------------------------------------------------------------------

std::int64_t percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  const auto rank =
      static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

void print_header(const Options& o, const std::vector<Upload>& trace) {
  std::array<std::uint64_t, class_count> per_class{};
  std::uint64_t over_2gib = 0;
  std::vector<std::uint64_t> sizes;
  sizes.reserve(trace.size());
  for (const Upload& u : trace) {
    ++per_class[size_class(u.size)];
    if (u.size >= huge_size) ++over_2gib;
    sizes.push_back(u.size);
  }
  std::sort(sizes.begin(), sizes.end());
  const auto at = [&](double p) {
    return sizes[std::min(sizes.size() - 1,
                          static_cast<std::size_t>(p * static_cast<double>(sizes.size())))];
  };
  std::printf("admit_upload_sim --seed %llu --uploads %llu --rate %g --budget %s --slots %u\n",
              static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.uploads),
              o.rate, format_bytes(static_cast<double>(o.budget)).c_str(), o.slots);
  std::printf(
      "  --bandwidth %s/s --median-size %s --sigma %g --wait %s%s%s\n",
      format_bytes(static_cast<double>(o.bandwidth)).c_str(),
      format_bytes(static_cast<double>(o.median_size)).c_str(), o.sigma,
      o.wait_ns == 0 ? "0 (refused clients give up at once)" : format_duration(o.wait_ns).c_str(),
      o.fairness == admit::Fairness::barging ? " --fairness barging" : "",
      o.max_waiters != 0 ? (" --max-waiters " + std::to_string(o.max_waiters)).c_str() : "");
  std::printf("trace: %zu uploads over %s of simulated time; sizes p50 %s, p99 %s, max %s\n",
              trace.size(), format_duration(trace.back().arrival_ns).c_str(),
              format_bytes(static_cast<double>(at(0.5))).c_str(),
              format_bytes(static_cast<double>(at(0.99))).c_str(),
              format_bytes(static_cast<double>(sizes.back())).c_str());
  std::printf(
      "  %llu < 100 MiB, %llu < 1 GiB, %llu >= 1 GiB (of which %llu >= 2 GiB)\n\n",
      static_cast<unsigned long long>(per_class[0]), static_cast<unsigned long long>(per_class[1]),
      static_cast<unsigned long long>(per_class[2]), static_cast<unsigned long long>(over_2gib));
}

void print_tables(const Options& o, const std::vector<Result>& results) {
  // Refusal columns: too_large always, then every reason that occurred.
  std::vector<std::size_t> columns{static_cast<std::size_t>(Outcome::too_large)};
  for (std::size_t r = static_cast<std::size_t>(Outcome::no_slot); r < outcome_count; ++r) {
    for (const Result& result : results) {
      if (result.all.outcomes[r] != 0) {
        columns.push_back(r);
        break;
      }
    }
  }
  std::printf("%-14s %-10s %8s %9s", "policy", "class", "uploads", "admitted");
  for (const std::size_t c : columns) std::printf(" %10s", outcome_names[c]);
  std::printf("\n");
  const auto row = [&](const std::string& policy, const char* name, const Counts& counts) {
    std::printf("%-14s %-10s %8llu %9s", policy.c_str(), name,
                static_cast<unsigned long long>(counts.uploads),
                percent(counts.outcomes[0], counts.uploads).c_str());
    for (const std::size_t c : columns) {
      std::printf(" %10s", percent(counts.outcomes[c], counts.uploads).c_str());
    }
    std::printf("\n");
  };
  for (const Result& result : results) {
    row(result.policy, "all", result.all);
    for (std::size_t c = 0; c < class_count; ++c) row("", class_names[c], result.by_class[c]);
    row("", huge_name, result.huge);
  }

  std::printf("\n%-14s %14s %14s %11s", "policy", "mean reserved", "peak reserved", "mean slots");
  if (o.wait_ns != 0) std::printf(" %8s %9s %9s", "waited", "p50 wait", "p99 wait");
  std::printf("\n");
  for (const Result& result : results) {
    std::printf("%-14s %14s %14s %11s", result.policy.c_str(),
                format_bytes(result.mean_bytes).c_str(),
                format_bytes(static_cast<double>(result.peak_bytes)).c_str(),
                printf_string("%.2f", result.mean_slots).c_str());
    if (o.wait_ns != 0) {
      std::printf(" %8s", percent(result.waited, result.all.uploads).c_str());
      if (result.waits_ns.empty()) {
        std::printf(" %9s %9s", "-", "-");
      } else {
        std::printf(" %9s %9s", format_duration(percentile(result.waits_ns, 50)).c_str(),
                    format_duration(percentile(result.waits_ns, 99)).c_str());
      }
    }
    std::printf("\n");
  }
  std::printf("\nPercentages are of the row's uploads; %s is part of >= 1 GiB.\n", huge_name);
  if (o.wait_ns != 0) {
    std::printf(
        "waited: queued on arrival; p50 / p99 wait: of those, the ones admitted;"
        " timed_out: gave up after --wait.\n");
  }
}

void print_csv(const Options& o, const std::vector<Result>& results) {
  std::printf("policy,class,uploads");
  for (const char* name : outcome_names) std::printf(",%s_pct", name);
  std::printf(
      ",mean_reserved_bytes,peak_reserved_bytes,mean_slots,waited_pct,p50_wait_ms,p99_wait_ms\n");
  const auto pct = [](std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  };
  for (const Result& r : results) {
    const bool waits = o.wait_ns != 0 && !r.waits_ns.empty();
    const double p50 = waits ? static_cast<double>(percentile(r.waits_ns, 50)) / 1e6 : 0;
    const double p99 = waits ? static_cast<double>(percentile(r.waits_ns, 99)) / 1e6 : 0;
    for (std::size_t c = 0; c <= class_count + 1; ++c) {
      const Counts& counts = c == 0 ? r.all : c <= class_count ? r.by_class[c - 1] : r.huge;
      const char* name = c == 0 ? "all" : c <= class_count ? class_names[c - 1] : huge_name;
      std::printf("%s,%s,%llu", r.policy.c_str(), name,
                  static_cast<unsigned long long>(counts.uploads));
      for (std::size_t k = 0; k < outcome_count; ++k) {
        std::printf(",%.3f", pct(counts.outcomes[k], counts.uploads));
      }
      std::printf(",%.0f,%llu,%.3f,%.3f,%.3f,%.3f\n", r.mean_bytes,
                  static_cast<unsigned long long>(r.peak_bytes), r.mean_slots,
                  pct(r.waited, r.all.uploads), p50, p99);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  const std::vector<Upload> trace = make_trace(options);
  std::vector<Result> results;
  for (const PolicySpec& spec : options.policies) {
    results.push_back(std::visit(
        [&](const auto& policy) {
          return Simulation{options, trace, policy}.run(spec.name);
        },
        spec.policy));
  }
  if (options.csv) {
    print_csv(options, results);
  } else {
    print_header(options, trace);
    print_tables(options, results);
  }
  return 0;
}
