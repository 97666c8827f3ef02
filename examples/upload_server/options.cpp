// options.cpp - a table of flags, each with the function that applies its value.
#include "options.hpp"

#include <admit/config.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <utility>

namespace upload_server {
namespace {

[[noreturn]] void reject(std::string_view expected, std::string_view value) {
  throw std::invalid_argument("expected " + std::string{expected} + ", got '" + std::string{value} +
                              "'");
}

// A decimal integer in [min, max], or a message saying what was expected.
template <class Int>
Int parse_integer(std::string_view value, Int min, Int max, std::string_view expected) {
  Int result{};
  const char* const end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, result);
  if (error != std::errc{} || stop != end || result < min || result > max) {
    reject(expected, value);
  }
  return result;
}

constexpr std::string_view budget_forms = "a size such as 200MiB, or auto[:PERCENT%[-SIZE]]";

// "auto", "auto:85%" or "auto:85%-64MiB": PERCENT (1..100) of the limit, after
// SIZE is taken off it. Anything else quotes the whole value.
admit::BudgetRule parse_budget_rule(std::string_view value) {
  admit::BudgetRule rule;  // plain "auto": 90 %, no reserve
  if (value == "auto") return rule;
  std::string_view rest = value.substr(std::string_view{"auto:"}.size());
  const std::size_t percent_sign = rest.find('%');
  if (percent_sign == std::string_view::npos) reject(budget_forms, value);
  const std::string_view digits = rest.substr(0, percent_sign);
  const auto [stop, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), rule.percent);
  if (error != std::errc{} || stop != digits.data() + digits.size() || rule.percent < 1 ||
      rule.percent > 100) {
    reject(budget_forms, value);
  }
  rest.remove_prefix(percent_sign + 1);
  if (rest.empty()) return rule;
  if (!rest.starts_with('-')) reject(budget_forms, value);
  try {
    rule.reserve_bytes = parse_size(rest.substr(1));
  } catch (const std::invalid_argument&) {
    reject(budget_forms, value);
  }
  return rule;
}

// admit validates the pool configuration itself; these checks only move the
// error from server start-up to the flag that caused it, with the flag's name.
void set_budget(Options& options, std::string_view value) {
  if (value == "auto" || value.starts_with("auto:")) {
    options.budget_rule = parse_budget_rule(value);
    return;
  }
  std::uint64_t budget = 0;
  try {
    budget = parse_size(value);
  } catch (const std::invalid_argument&) {
    reject(budget_forms, value);
  }
  if (budget == 0 || budget > admit::PoolConfig::max_memory_budget) {
    reject("a budget of 1B to " + std::to_string(admit::PoolConfig::max_memory_budget) + "B",
           value);
  }
  options.budget = budget;
  options.budget_rule.reset();
}

// "90%/80%": the high and the low watermark, 0 <= LOW < HIGH <= 100.
void set_pressure(Options& options, std::string_view value) {
  constexpr std::string_view expected = "HIGH%/LOW% with LOW < HIGH <= 100, such as 90%/80%";
  const auto percent = [&](std::string_view text) {
    unsigned result = 0;
    if (!text.ends_with('%')) reject(expected, value);
    text.remove_suffix(1);
    const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), result);
    if (text.empty() || error != std::errc{} || stop != text.data() + text.size() || result > 100) {
      reject(expected, value);
    }
    return result;
  };
  const std::size_t slash = value.find('/');
  if (slash == std::string_view::npos) reject(expected, value);
  const unsigned high = percent(value.substr(0, slash));
  const unsigned low = percent(value.substr(slash + 1));
  if (low >= high) reject(expected, value);
  options.pressure_high = high;
  options.pressure_low = low;
}

void set_slots(Options& options, std::string_view value) {
  options.slots = parse_integer<std::uint32_t>(
      value, 1, admit::PoolConfig::max_slots,
      "a slot count in 1.." + std::to_string(admit::PoolConfig::max_slots));
}

// A timeout of zero would cut off every client at once: refused.
std::chrono::milliseconds positive_duration(std::string_view value) {
  const std::chrono::milliseconds duration = parse_duration(value);
  if (duration <= std::chrono::milliseconds::zero())
    reject("a duration above 0, such as 30s", value);
  return duration;
}

struct Flag {
  std::string_view name;
  bool takes_value;
  void (*apply)(Options&, std::string_view value);
};

constexpr std::array<Flag, 29> flags{{
    {"--host", true,
     [](Options& o, std::string_view v) {
       if (v.empty()) reject("a host name or address", v);
       o.host = v;
     }},
    {"--port", true,
     [](Options& o, std::string_view v) {
       o.port = parse_integer<std::uint16_t>(v, 0, 65535, "a port number in 0..65535");
     }},
    {"--dir", true,
     [](Options& o, std::string_view v) {
       if (v.empty()) reject("a directory", v);
       o.dir = v;
     }},
    {"--budget", true, set_budget},
    {"--slots", true, set_slots},
    {"--policy", true,
     [](Options& o, std::string_view v) {
       o.policy = AnyPolicy::parse(v);
       o.policy_text = v;
     }},
    {"--wait", true, [](Options& o, std::string_view v) { o.wait = parse_duration(v); }},
    {"--fairness", true,
     [](Options& o, std::string_view v) {
       if (v == "fifo") {
         o.fairness = admit::Fairness::fifo;
       } else if (v == "barging") {
         o.fairness = admit::Fairness::barging;
       } else if (v == "lanes") {
         o.fairness = admit::Fairness::lanes;
       } else {
         reject("fifo, barging or lanes", v);
       }
     }},
    {"--max-head-wait", true,
     [](Options& o, std::string_view v) { o.max_head_wait = parse_duration(v); }},
    {"--max-body", true,
     [](Options& o, std::string_view v) {
       o.max_body = parse_size(v);
       if (o.max_body == 0) reject("a size of at least 1B", v);
     }},
    {"--admission", true,
     [](Options& o, std::string_view v) {
       if (v != "on" && v != "off") reject("on or off", v);
       o.admission = v == "on";
     }},
    {"--fsync", true,
     [](Options& o, std::string_view v) {
       if (v != "on" && v != "off") reject("on or off", v);
       o.fsync = v == "on";
     }},
    {"--hash-threads", true,
     [](Options& o, std::string_view v) {
       if (v == "auto") {
         o.hash_threads.reset();
       } else {
         o.hash_threads = parse_integer<std::uint32_t>(v, 0, 64, "auto or a thread count in 0..64");
       }
     }},
    {"--grace", true, [](Options& o, std::string_view v) { o.grace = parse_duration(v); }},
    {"--buffer", true,
     [](Options& o, std::string_view v) {
       if (v != "stream" && v != "memory") reject("stream or memory", v);
       o.buffer = v == "memory" ? BufferMode::memory : BufferMode::stream;
     }},
    {"--track-reservations", true,
     [](Options& o, std::string_view v) {
       if (v != "on" && v != "off") reject("on or off", v);
       o.track_reservations = v == "on";
     }},
    {"--body-timeout", true,
     [](Options& o, std::string_view v) { o.body_timeout = positive_duration(v); }},
    {"--min-rate", true, [](Options& o, std::string_view v) { o.min_rate = parse_size(v); }},
    {"--header-timeout", true,
     [](Options& o, std::string_view v) { o.header_timeout = positive_duration(v); }},
    {"--first-message-timeout", true,
     [](Options& o, std::string_view v) { o.first_message_timeout = positive_duration(v); }},
    {"--max-connections", true,
     [](Options& o, std::string_view v) {
       o.max_connections = parse_integer<std::uint32_t>(
           v, 0, 1'000'000, "a connection count in 0..1000000 (0: from the descriptor limit)");
     }},
    {"--max-connections-per-ip", true,
     [](Options& o, std::string_view v) {
       o.max_connections_per_ip = parse_integer<std::uint32_t>(
           v, 0, 1'000'000, "a connection count in 0..1000000 (0: no cap)");
     }},
    {"--follow-memory", true,
     [](Options& o, std::string_view v) { o.follow_memory = positive_duration(v); }},
    {"--pressure", true, set_pressure},
    {"--memory-root", true,
     [](Options& o, std::string_view v) {
       if (v.empty()) reject("a directory", v);
       o.memory_root = v;
     }},
    {"--partition", true,
     [](Options& o, std::string_view v) {
       PartitionFlag flag = parse_partition_flag(v);
       check_partition_set(o.partitions, flag);
       o.partitions.push_back(std::move(flag));
     }},
    {"--tenant-header", true,
     [](Options& o, std::string_view v) {
       // A header name is an RFC 9110 token; these are the characters a
       // name given on a command line plausibly holds.
       const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
         return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
       });
       if (!ok) reject("a header name such as X-Tenant", v);
       o.tenant_header = v;
     }},
    {"--bypass-token", true,
     [](Options& o, std::string_view v) {
       // Short tokens are guessed; printable ASCII fits a header as given.
       const bool ok = v.size() >= 16 && std::all_of(v.begin(), v.end(), [](char c) {
         return c > ' ' && c < 127;
       });
       if (!ok) reject("a token of at least 16 printable characters, no spaces", v);
       o.bypass_token = v;
     }},
    {"--help", false, [](Options& o, std::string_view) { o.help = true; }},
}};

const Flag* find_flag(std::string_view name) {
  for (const Flag& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

// A flag that would change nothing without another is refused rather than
// ignored: the operator meant something by it.
void check_combinations(const Options& options, bool pressure_given, bool memory_root_given,
                        bool max_head_wait_given, bool tenant_header_given) {
  if (tenant_header_given && options.partitions.empty()) {
    throw std::invalid_argument(
        "--tenant-header: takes effect only with --partition; without partitions there is no "
        "tenant to pick");
  }
  if (max_head_wait_given && options.fairness != admit::Fairness::lanes) {
    throw std::invalid_argument("--max-head-wait: takes effect only with --fairness lanes");
  }
  if (options.follow_memory > std::chrono::milliseconds::zero() && !options.budget_rule) {
    throw std::invalid_argument(
        "--follow-memory: needs --budget auto[:PERCENT%[-SIZE]]; a budget given as a size does "
        "not follow the memory limit");
  }
  if (pressure_given && options.follow_memory == std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(
        "--pressure: takes effect only with --follow-memory, which reads the usage it compares");
  }
  if (memory_root_given && !options.budget_rule) {
    throw std::invalid_argument(
        "--memory-root: takes effect only with --budget auto[:PERCENT%[-SIZE]]");
  }
}

}  // namespace

Options parse_options(std::span<const std::string_view> args) {
  Options options;
  bool pressure_given = false;
  bool memory_root_given = false;
  bool max_head_wait_given = false;
  bool tenant_header_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view name = args[i];
    std::optional<std::string_view> value;
    if (const std::size_t equals = name.find('=');
        name.starts_with("--") && equals != std::string_view::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const Flag* flag = find_flag(name);
    if (flag == nullptr) {
      throw std::invalid_argument(
          (name.starts_with("-") ? "unknown flag '" : "unexpected argument '") + std::string{name} +
          "' (see --help)");
    }
    const std::string prefix = std::string{flag->name} + ": ";
    if (!flag->takes_value && value) {
      throw std::invalid_argument(prefix + "takes no value, got '" + std::string{*value} + "'");
    }
    if (flag->takes_value && !value) {
      if (i + 1 == args.size()) throw std::invalid_argument(prefix + "missing value");
      value = args[++i];
    }
    try {
      flag->apply(options, value.value_or(std::string_view{}));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(prefix + e.what());
    }
    pressure_given = pressure_given || flag->name == "--pressure";
    memory_root_given = memory_root_given || flag->name == "--memory-root";
    max_head_wait_given = max_head_wait_given || flag->name == "--max-head-wait";
    tenant_header_given = tenant_header_given || flag->name == "--tenant-header";
  }
  if (!options.help) {
    check_combinations(options, pressure_given, memory_root_given, max_head_wait_given,
                       tenant_header_given);
  }
  return options;
}

std::string usage(std::string_view program) {
  return "usage: " + std::string{program} + R"( [flags]

An HTTP and WebSocket upload server whose uploads are admitted by admit.
GET /debug/uploads lists the uploads running; SIGUSR1 logs why the pool admits
what it admits (admit::describe); SIGINT or SIGTERM shut it down.

  --host HOST          address to listen on (default 127.0.0.1)
  --port N             port to listen on, 0 for any free port (default 8080)
  --dir PATH           directory to store uploads in (default uploads)
  --budget SIZE|auto[:PERCENT%[-SIZE]]
                       memory all running uploads may reserve (default 200MiB);
                       auto: PERCENT (default 90) of the memory limit read at
                       start (the cgroup's, else MemTotal), after SIZE is taken
                       off it (default 0), such as auto:85%-64MiB
  --slots N            uploads that may run at once (default 16)
  --policy POLICY      what each upload reserves (default tiered):
                         tiered         20 % below 100 MiB, 10 % below 1 GiB,
                                        then 5 % capped at 100 MiB
                         flat:PERCENT   the same percentage of every upload
                         fixed:SIZE     the same bytes for every upload
  --wait DURATION      how long an upload may wait for room (default 0: refuse)
  --fairness fifo|barging|lanes
                       who goes first among waiting uploads: fifo, in order of
                       arrival; barging, whoever fits; lanes, in order, but
                       uploads that fit may pass a waiting one for at most
                       --max-head-wait (default fifo)
  --max-head-wait DURATION
                       with --fairness lanes, how long uploads may pass the
                       first waiting one (default 1s)
  --max-body SIZE      largest upload accepted (default 64GiB)
  --admission on|off   off admits every upload, to compare (default on)
  --fsync on|off       off stores uploads without waiting for the disk (fsync):
                       faster, but a power loss soon after may lose an upload
                       already answered 201, as with nginx (default on)
  --hash-threads N|auto
                       threads that compute uploads' SHA-256 beside the
                       server's; 0: on the server's thread (default auto: one
                       per core beyond the first, at most 4)
  --grace DURATION     how long running uploads may finish on shutdown (default 30s)
  --buffer stream|memory
                       stream: every upload passes through one small buffer;
                       memory: through a part of what it reserved (at least
                       64 KiB, at most its size), charged to its reservation,
                       so that the server really uses what admission granted
                       (default stream)
  --track-reservations on|off
                       keep a record of each upload's reservation, so that
                       SIGUSR1 logs which upload holds the most (default on)

Slow, idle and hostile clients:
  --body-timeout DURATION
                       cut off an upload that sends no data this long; pings and
                       pongs do not count (default 30s)
  --min-rate SIZE      bytes per second an upload must average over each
                       --body-timeout interval (default 0: no minimum)
  --header-timeout DURATION
                       time a connection has to send a request's headers
                       (default 30s)
  --first-message-timeout DURATION
                       time a WebSocket has to send its upload request after
                       the upgrade (default 10s)
  --max-connections N  open connections at once (default 0: from the
                       descriptor limit, ulimit -n)
  --max-connections-per-ip N
                       open connections from one address (default 0: no cap)

Following the memory limit (with --budget auto):
  --follow-memory DURATION
                       read the limit and the usage this often: the budget
                       follows the limit, and new uploads are refused (503,
                       close 1013; /healthz 503) while usage is high (see
                       --pressure); running ones go on (default: off, the
                       limit is read once at start)
  --pressure HIGH%/LOW%
                       with --follow-memory: refuse new uploads once usage
                       reaches HIGH% of the limit, until it is back at LOW%
                       (default 90%/80%)
  --memory-root DIR    where --budget auto reads /proc and /sys (default /)

Tenants:
  --partition NAME:GUARANTEE%:CEILING%
                       a named share of the pool, repeatable, such as
                       batch:10%:30%: its uploads may hold at most CEILING% of
                       the budget and slots, and are owed GUARANTEE% first
                       (guarantees add up to 100% at most). A partition
                       "default" (0%:100% unless given) takes uploads that
                       name no tenant or an unknown one (default: none)
  --tenant-header NAME the header that names an upload's tenant, else the
                       query parameter tenant (?tenant=batch); only with
                       --partition (default X-Tenant)
  --bypass-token TOKEN a request with "X-Admit-Bypass: TOKEN" skips admission
                       (health probes, admin); a wrong token counts as none
                       (default: off)

  --help               print this text and exit

SIZE is a number with an optional unit: B, KiB, MiB, GiB, TiB (binary) or kB,
MB, GB, TB (decimal), such as 200MiB or 1.5GiB. DURATION is 0 or a number with
ms, s, m or h, such as 250ms or 1.5s. Both "--flag value" and "--flag=value" work.
)";
}

}  // namespace upload_server
