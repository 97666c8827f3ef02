// benchmarks/upload_sim/options.hpp - the command line: flags, sizes, durations, policies.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"
#include "format.hpp"

namespace admit_sim {

// --- Options -------------------------------------------------------------------

struct PolicySpec {
  std::string name;
  std::variant<admit::TieredPolicy, admit::FlatPolicy, admit::FixedPolicy> policy;
};

/// A --partition: one tenant's share in the tenants scenario's "with partitions" run.
struct PartitionSpec {
  std::string name;
  admit::PartitionConfig config;
};

/// The tenants scenario's two tenants, in the order the tables print them.
inline constexpr std::array<const char*, 2> tenant_names{"batch", "interactive"};

enum class Scenario : std::uint8_t { single, tenants };

struct Options {
  Scenario scenario = Scenario::single;
  // The defaults cap the flooding tenant well below the pool and owe the
  // steady one most of it, so that the "with partitions" column shows what a
  // partition is for; both may still borrow what the other leaves idle.
  std::vector<PartitionSpec> partitions{
      {"batch", {.guarantee_percent = 10, .ceiling_percent = 40}},
      {"interactive", {.guarantee_percent = 60, .ceiling_percent = 100}}};
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
  // Every mode is replayed on the same trace; more than one gives the
  // side-by-side comparison (--fairness all).
  std::vector<admit::Fairness> fairness{admit::Fairness::fifo};
  // Lanes: the library's own defaults, so that the simulator shows what a
  // pool configured with nothing but Fairness::lanes does.
  std::chrono::milliseconds max_head_wait = admit::PoolConfig{}.max_head_wait;
  std::uint32_t max_pass_percent = admit::PoolConfig{}.max_pass_percent;
  std::vector<PolicySpec> policies;  // empty: the three defaults
  bool csv = false;
};

inline constexpr const char* usage_template = R"(usage: admit_upload_sim [options]

Replays seeded upload traffic against a real admit::SlotPool in simulated time,
once per policy, and prints admitted / refused percentages by reason and size
class, reserved memory and (with --wait) wait times. With --fairness all, once
per policy and fairness mode, side by side. Deterministic: the same options
give the same output.

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
  --fairness F        fifo | barging | lanes | all; all replays the trace
                      under each and prints them side by side    (default fifo)
  --max-head-wait D   lanes: how long requests may pass a waiting head
                      (PoolConfig::max_head_wait), in whole ms   (default %HW%)
  --max-pass-percent N
                      lanes: the share of the head's bytes, 0..100, that
                      the requests passing it may take in all    (default %PP%)
  --policy P          tiered | flat:PERCENT | fixed:SIZE; repeat to compare
                      (default: flat:10, tiered and fixed:8MiB)
  --scenario S        single | tenants                           (default single)
                      single: one stream of uploads, as described above.
                      tenants: two tenants share the pool. batch floods: a
                      burst of 50 uploads at once every 10 s, sizes median
                      64MiB (sigma 0.5); interactive uploads steadily: Poisson
                      2 per second, sizes median 2MiB (sigma 0.5). --uploads
                      counts both; --rate, --median-size and --sigma do not
                      apply. The trace is replayed without partitions (the
                      plain pool) and with them, side by side per tenant.
  --partition NAME:G%:C%
                      tenants: partition NAME (batch or interactive) gets a
                      guarantee of G % and a ceiling of C % of the budget and
                      slots; repeat for both (default batch:10%:40% and
                      interactive:60%:100%)
  --csv               one CSV row per policy and size class instead of tables
  --help              this text

SIZE: a byte count with an optional binary unit, e.g. 200MiB, 2GiB, 1.5GiB,
8MiB, 512KiB, 1048576 (B, KiB, MiB, GiB, TiB; "/s" allowed for --bandwidth).
DURATION: a number and a unit, e.g. 2s, 500ms, 1.5s, 2min (ns, us, ms, s,
min); 0 needs no unit.
)";

/// The usage text, with the lanes defaults read from the library.
inline std::string usage_text() {
  std::string text = usage_template;
  const auto put = [&](std::string_view key, const std::string& value) {
    text.replace(text.find(key), key.size(), value);
  };
  put("%HW%", format_duration(admit::PoolConfig{}.max_head_wait.count() * 1'000'000));
  put("%PP%", std::to_string(admit::PoolConfig{}.max_pass_percent));
  return text;
}

[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "admit_upload_sim: %s (see --help)\n", message.c_str());
  std::exit(2);
}

inline bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return lower(x) == lower(y);
  });
}

/// "12", "1.5": a non-negative decimal number and the text after it.
inline std::optional<std::pair<long double, std::string_view>> parse_number(std::string_view text) {
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

inline std::uint64_t parse_size(std::string_view flag, std::string_view text,
                                bool per_second = false) {
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

inline std::int64_t parse_duration(std::string_view flag, std::string_view text) {
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

inline double parse_positive(std::string_view flag, std::string_view text,
                             std::string_view suffix = {}) {
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

inline PolicySpec parse_policy(std::string_view text) {
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

inline std::optional<admit::Fairness> parse_fairness(std::string_view text) {
  if (text == "fifo") return admit::Fairness::fifo;
  if (text == "barging") return admit::Fairness::barging;
  if (text == "lanes") return admit::Fairness::lanes;
  return std::nullopt;
}

inline const char* fairness_name(admit::Fairness fairness) {
  switch (fairness) {
    case admit::Fairness::fifo:
      return "fifo";
    case admit::Fairness::barging:
      return "barging";
    case admit::Fairness::lanes:
      return "lanes";
  }
  return "?";
}

/// PoolConfig::max_head_wait is whole milliseconds: a finer value would be
/// silently truncated by the pool, so it is refused here instead.
inline std::chrono::milliseconds parse_head_wait(std::string_view flag, std::string_view text) {
  const std::int64_t ns = parse_duration(flag, text);
  if (ns % 1'000'000 != 0) {
    fail(std::string{flag} +
         ": expected a whole number of milliseconds (the pool counts in ms), got '" +
         std::string{text} + "'");
  }
  return std::chrono::milliseconds{ns / 1'000'000};
}

/// "batch:10%:40%" (the % signs optional), checked as add_partition would
/// check it, so that a bad value is refused with the option's name.
inline PartitionSpec parse_partition(std::string_view text) {
  const auto first = text.find(':');
  const auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos) {
    fail("--partition: expected NAME:GUARANTEE%:CEILING%, e.g. batch:10%:40%, got '" +
         std::string{text} + "'");
  }
  const auto percent = [&](std::string_view part) {
    if (part.ends_with("%")) part.remove_suffix(1);
    return parse_int<std::uint32_t>("--partition " + std::string{text}, part, 0, 100);
  };
  PartitionSpec spec{std::string{text.substr(0, first)},
                     {.guarantee_percent = percent(text.substr(first + 1, second - first - 1)),
                      .ceiling_percent = percent(text.substr(second + 1))}};
  if (const auto error = admit::validation_error(spec.name, spec.config)) {
    fail("--partition: " + *error);
  }
  if (std::find(tenant_names.begin(), tenant_names.end(), spec.name) == tenant_names.end()) {
    fail("--partition: no tenant named '" + spec.name +
         "' (the tenants are batch and interactive)");
  }
  return spec;
}

inline Options parse_options(int argc, char** argv) {
  Options o;
  bool partition_given = false;
  std::string_view lanes_flag;  // the last lanes-only option given, for the error below
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text().c_str(), stdout);
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
      if (value == "all") {
        o.fairness = {admit::Fairness::fifo, admit::Fairness::barging, admit::Fairness::lanes};
      } else if (const auto mode = parse_fairness(value)) {
        o.fairness = {*mode};
      } else {
        fail("--fairness: expected fifo, barging, lanes or all, got '" + std::string{value} + "'");
      }
    } else if (arg == "--max-head-wait") {
      o.max_head_wait = parse_head_wait(arg, value);
      lanes_flag = arg;
    } else if (arg == "--max-pass-percent") {
      if (value.ends_with("%")) value.remove_suffix(1);
      o.max_pass_percent = parse_int<std::uint32_t>(arg, value, 0, 100);
      lanes_flag = arg;
    } else if (arg == "--policy") {
      o.policies.push_back(parse_policy(value));
    } else if (arg == "--scenario") {
      if (value == "single") {
        o.scenario = Scenario::single;
      } else if (value == "tenants") {
        o.scenario = Scenario::tenants;
      } else {
        fail("--scenario: expected single or tenants, got '" + std::string{value} + "'");
      }
    } else if (arg == "--partition") {
      // A given --partition replaces that tenant's default, not the other's.
      PartitionSpec spec = parse_partition(value);
      for (PartitionSpec& p : o.partitions) {
        if (p.name == spec.name) p = std::move(spec);
      }
      partition_given = true;
    } else {
      fail("unknown option '" + std::string{arg} + "'");
    }
  }
  if (o.budget == 0 || o.budget > admit::PoolConfig::max_memory_budget) {
    fail("--budget must be in 1.." + std::to_string(admit::PoolConfig::max_memory_budget) +
         " bytes");
  }
  if (!lanes_flag.empty() &&
      std::find(o.fairness.begin(), o.fairness.end(), admit::Fairness::lanes) == o.fairness.end()) {
    fail(std::string{lanes_flag} + " applies only to --fairness lanes or --fairness all");
  }
  if (partition_given && o.scenario != Scenario::tenants) {
    fail("--partition applies only to --scenario tenants");
  }
  std::uint32_t guarantees = 0;
  for (const PartitionSpec& p : o.partitions) guarantees += p.config.guarantee_percent;
  if (guarantees > 100) {
    fail("--partition: the guarantees add up to " + std::to_string(guarantees) +
         " %, more than 100 %");
  }
  if (o.policies.empty()) {
    o.policies.push_back(parse_policy("flat:10"));
    o.policies.push_back(parse_policy("tiered"));
    o.policies.push_back(parse_policy("fixed:8MiB"));
  }
  return o;
}

}  // namespace admit_sim
