// Tests for options.hpp, quantities.hpp and any_policy.hpp: the server's flags,
// the size and duration syntax they share, and the runtime-chosen policy.
#include "options.hpp"

#include <admit/environment.hpp>
#include <admit/policy.hpp>
#include <admit/units.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "any_policy.hpp"
#include "catch.hpp"
#include "quantities.hpp"
#include "support.hpp"

using admit::GiB;
using admit::KiB;
using admit::MiB;
using admit::TiB;
using admit_test::contains;
using admit_test::invalid_argument_message;
using std::chrono::milliseconds;
using upload_server::AnyPolicy;
using upload_server::Options;
using upload_server::parse_duration;
using upload_server::parse_size;

namespace {

constexpr std::uint64_t large_upload = 2'530'644'380;

Options parse(std::vector<std::string_view> args) { return upload_server::parse_options(args); }

std::string parse_error(std::vector<std::string_view> args) {
  return invalid_argument_message([&] { (void)parse(std::move(args)); });
}

}  // namespace

TEST_CASE("parse_size reads bytes, binary and decimal units, and exact fractions",
          "[options][size]") {
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("1024") == 1024);
  CHECK(parse_size("512B") == 512);
  CHECK(parse_size("64KiB") == 64 * KiB);
  CHECK(parse_size("200MiB") == 200 * MiB);
  CHECK(parse_size("2GiB") == 2 * GiB);
  CHECK(parse_size("1TiB") == TiB);
  CHECK(parse_size("1kB") == 1'000);
  CHECK(parse_size("1KB") == 1'000);
  CHECK(parse_size("5MB") == 5'000'000);
  CHECK(parse_size("2GB") == 2'000'000'000);
  CHECK(parse_size("3TB") == 3'000'000'000'000);
  CHECK(parse_size("1.5GiB") == 1536 * MiB);
  CHECK(parse_size("0.5KiB") == 512);
  CHECK(parse_size("2.0GiB") == 2 * GiB);
  CHECK(parse_size("2.530644380GB") == large_upload);
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_size("16777215.5TiB") == 16777215 * TiB + TiB / 2);  // near 2^64, yet whole
}

TEST_CASE("parse_size refuses garbage, fractions of a byte and overflow, quoting the text",
          "[options][size]") {
  const auto check_refused = [](std::initializer_list<std::string_view> texts) {
    for (const std::string_view text : texts) {
      INFO("text: '" << text << "'");
      CHECK(invalid_argument_message([&] { (void)parse_size(text); }) ==
            "expected a size such as 200MiB, got '" + std::string{text} + "'");
    }
  };
  check_refused(
      {"", "20x", "MiB", "-1", "+1", " 1", "1 ", "1 MiB", "1.", ".5KiB", "1..2", "1.2.3KiB"});
  check_refused({"1M", "1K", "1mib", "1kib", "1Mb"});  // units are spelled out exactly
  check_refused({"1.5", "1.5B", "0.3KiB"});            // not a whole number of bytes
  check_refused({"18446744073709551616", "16777216TiB", "0.00000000000000000001TiB"});
}

// Found by the quantities fuzz target, against an exact reference: a fraction
// of more than 19 significant decimals was refused even when it was a whole
// number of bytes, as binary units make it (2^-40 TiB is 40 decimals).
TEST_CASE("parse_size is exact for fractions of any length", "[options][size]") {
  CHECK(parse_size("0.0000000000009094947017729282379150390625TiB") == 1);  // 2^-40 TiB
  CHECK(parse_size("0.000000002793967723846435546875GiB") == 3);
  CHECK(parse_size("16777215.9999999999990905052982270717620849609375TiB") ==
        std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_size("1." + std::string(100, '0') + "B") == 1);
  for (const std::string_view bad :
       {"0.00000000000045474735088646411895751953125TiB",           // half a byte
        "16777216.0000000000009094947017729282379150390625TiB"}) {  // 2^64 + 1
    INFO("text: '" << bad << "'");
    CHECK(invalid_argument_message([&] { (void)parse_size(bad); }) ==
          "expected a size such as 200MiB, got '" + std::string{bad} + "'");
  }
}

TEST_CASE("parse_duration reads ms, s, m and h, and a bare 0", "[options][duration]") {
  CHECK(parse_duration("0") == milliseconds{0});
  CHECK(parse_duration("0s") == milliseconds{0});
  CHECK(parse_duration("250ms") == milliseconds{250});
  CHECK(parse_duration("2s") == milliseconds{2'000});
  CHECK(parse_duration("1.5s") == milliseconds{1'500});
  CHECK(parse_duration("0.001s") == milliseconds{1});
  CHECK(parse_duration("1m") == milliseconds{60'000});
  CHECK(parse_duration("1.5h") == milliseconds{5'400'000});
}

TEST_CASE("parse_duration refuses a missing unit, sub-millisecond values and overflow",
          "[options][duration]") {
  for (const std::string_view bad : {"", "5", "s", "1.5ms", "0.0001s", "2 s", "1d", "-1s", "1S",
                                     "9223372036854775808ms", "1e3ms"}) {
    INFO("text: '" << bad << "'");
    CHECK(invalid_argument_message([&] { (void)parse_duration(bad); }) ==
          "expected a duration such as 250ms or 1.5s, got '" + std::string{bad} + "'");
  }
  CHECK(parse_duration("9223372036854775807ms").count() ==
        std::numeric_limits<milliseconds::rep>::max());
}

TEST_CASE("AnyPolicy reserves what the policy it holds reserves", "[options][policy]") {
  STATIC_REQUIRE(admit::MemoryPolicy<AnyPolicy>);

  SECTION("tiered, the default, matches admit::DefaultPolicy") {
    const AnyPolicy policy;
    CHECK(policy.name() == "tiered");
    CHECK(AnyPolicy::parse("tiered").name() == "tiered");
    const admit::DefaultPolicy reference;
    std::mt19937_64 rng{7578};
    std::vector<std::uint64_t> sizes{
        0,       1,   100 * MiB - 1, 100 * MiB,
        GiB - 1, GiB, large_upload,  std::numeric_limits<std::uint64_t>::max()};
    for (int i = 0; i < 1000; ++i) sizes.push_back(rng() >> (rng() % 64));
    for (const std::uint64_t size : sizes) {
      INFO("size " << size);
      CHECK(policy.bytes_for(size) == reference.bytes_for(size));
    }
    CHECK(policy.bytes_for(large_upload) == 104'857'600);
  }
  SECTION("flat:10 is the old rule that refused the 2.36 GiB upload") {
    const AnyPolicy policy = AnyPolicy::parse("flat:10");
    CHECK(policy.name() == "flat:10");
    CHECK(policy.bytes_for(large_upload) == 253'064'438);
    CHECK(AnyPolicy::parse("flat:100").bytes_for(large_upload) == large_upload);
  }
  SECTION("fixed:SIZE reserves the same for every upload, and names it in bytes") {
    const AnyPolicy policy = AnyPolicy::parse("fixed:8MiB");
    CHECK(policy.name() == "fixed:8388608");
    CHECK(policy.bytes_for(0) == 8 * MiB);
    CHECK(policy.bytes_for(large_upload) == 8 * MiB);
  }
  SECTION("a custom tier table says so in its name") {
    const AnyPolicy policy{admit::TieredPolicy{{MiB, 50}, {admit::Tier::unbounded, 1}}};
    CHECK(policy.name() == "tiered:custom");
    CHECK(policy.bytes_for(1000) == 500);
  }
}

TEST_CASE("AnyPolicy::parse refuses what it does not know, quoting it", "[options][policy]") {
  for (const std::string_view bad :
       {"", "Tiered", "flat", "flat:", "flat:0", "flat:101", "flat:-1", "flat: 10", "flat:10%",
        "flat:4294967306", "fixed", "fixed:", "fixed:0", "fixed:8mib", "fixed:1.5B", "tiered:x"}) {
    INFO("text: '" << bad << "'");
    const std::string message = invalid_argument_message([&] { (void)AnyPolicy::parse(bad); });
    CHECK(contains(message, "expected tiered, flat:PERCENT (1..100) or fixed:SIZE"));
    CHECK(contains(message, "got '" + std::string{bad} + "'"));
  }
}

TEST_CASE("parse_options: no arguments give the documented defaults", "[options]") {
  const Options o = parse({});
  CHECK(o.host == "127.0.0.1");
  CHECK(o.port == 8080);
  CHECK(o.dir == "uploads");
  CHECK(o.budget == 200 * MiB);
  CHECK(o.slots == 16);
  CHECK(o.policy.name() == "tiered");
  CHECK(o.policy_text == "tiered");
  CHECK(o.wait == milliseconds{0});
  CHECK(o.fairness == admit::Fairness::fifo);
  CHECK(o.max_head_wait == milliseconds{1'000});
  CHECK(o.max_body == 64 * GiB);
  CHECK(o.admission);
  CHECK(o.fsync);
  CHECK_FALSE(o.hash_threads.has_value());  // auto
  CHECK(o.grace == std::chrono::seconds{30});
  CHECK(o.buffer == upload_server::BufferMode::stream);
  CHECK(o.track_reservations);
  CHECK(o.body_timeout == std::chrono::seconds{30});
  CHECK(o.min_rate == 0);
  CHECK(o.header_timeout == std::chrono::seconds{30});
  CHECK(o.first_message_timeout == std::chrono::seconds{10});
  CHECK(o.max_connections == 0);
  CHECK(o.max_connections_per_ip == 0);
  CHECK_FALSE(o.budget_rule.has_value());  // the size above, not derived
  CHECK(o.follow_memory == milliseconds{0});
  CHECK(o.pressure_high == 90);
  CHECK(o.pressure_low == 80);
  CHECK(o.memory_root == "/");
  CHECK(o.partitions.empty());  // no partitions: the tenant is not read
  CHECK(o.tenant_header == "X-Tenant");
  CHECK(o.bypass_token.empty());  // off
  CHECK_FALSE(o.help);
}

TEST_CASE("parse_options reads every flag as '--flag value' and as '--flag=value'", "[options]") {
  const bool with_equals = GENERATE(false, true);
  const std::vector<std::pair<std::string_view, std::string_view>> flags{
      {"--host", "0.0.0.0"},
      {"--port", "0"},
      {"--dir", "/srv/up=loads"},
      {"--budget", "auto:85%-64MiB"},
      {"--slots", "4"},
      {"--policy", "fixed:8MiB"},
      {"--wait", "2s"},
      {"--fairness", "lanes"},
      {"--max-head-wait", "250ms"},
      {"--max-body", "1TiB"},
      {"--admission", "off"},
      {"--fsync", "off"},
      {"--hash-threads", "3"},
      {"--grace", "1.5s"},
      {"--buffer", "memory"},
      {"--track-reservations", "off"},
      {"--body-timeout", "5s"},
      {"--min-rate", "1KiB"},
      {"--header-timeout", "2s"},
      {"--first-message-timeout", "250ms"},
      {"--max-connections", "900"},
      {"--max-connections-per-ip", "8"},
      {"--follow-memory", "250ms"},
      {"--pressure", "95%/70%"},
      {"--memory-root", "/tmp/fake=root"},
      {"--partition", "batch:10%:30%"},
      {"--partition", "web:50%:100%"},
      {"--tenant-header", "X-Api-Key"},
      {"--bypass-token", "s3cret=token-0123456789"}};
  std::vector<std::string> storage;  // owns the "--flag=value" strings
  storage.reserve(flags.size());
  std::vector<std::string_view> args;
  for (const auto& [flag, value] : flags) {
    if (with_equals) {
      args.push_back(storage.emplace_back(std::string{flag} + "=" + std::string{value}));
    } else {
      args.insert(args.end(), {flag, value});
    }
  }
  const Options o = parse(args);
  CHECK(o.host == "0.0.0.0");
  CHECK(o.port == 0);
  CHECK(o.dir == "/srv/up=loads");  // only the first '=' separates
  REQUIRE(o.budget_rule.has_value());
  CHECK(o.budget_rule->percent == 85);
  CHECK(o.budget_rule->reserve_bytes == 64 * MiB);
  CHECK(o.slots == 4);
  CHECK(o.policy.name() == "fixed:8388608");
  CHECK(o.policy_text == "fixed:8MiB");
  CHECK(o.wait == milliseconds{2'000});
  CHECK(o.fairness == admit::Fairness::lanes);
  CHECK(o.max_head_wait == milliseconds{250});
  CHECK(o.max_body == TiB);
  CHECK_FALSE(o.admission);
  CHECK_FALSE(o.fsync);
  CHECK(o.hash_threads == 3U);
  CHECK(o.grace == milliseconds{1'500});
  CHECK(o.buffer == upload_server::BufferMode::memory);
  CHECK_FALSE(o.track_reservations);
  CHECK(o.body_timeout == milliseconds{5'000});
  CHECK(o.min_rate == 1024);
  CHECK(o.header_timeout == milliseconds{2'000});
  CHECK(o.first_message_timeout == milliseconds{250});
  CHECK(o.max_connections == 900);
  CHECK(o.max_connections_per_ip == 8);
  CHECK(o.follow_memory == milliseconds{250});
  CHECK(o.pressure_high == 95);
  CHECK(o.pressure_low == 70);
  CHECK(o.memory_root == "/tmp/fake=root");
  REQUIRE(o.partitions.size() == 2);  // repeatable, in order
  CHECK(o.partitions[0].name == "batch");
  CHECK(o.partitions[0].config.guarantee_percent == 10);
  CHECK(o.partitions[0].config.ceiling_percent == 30);
  CHECK(o.partitions[1].name == "web");
  CHECK(o.tenant_header == "X-Api-Key");
  CHECK(o.bypass_token == "s3cret=token-0123456789");
  CHECK_FALSE(o.help);
  CHECK(parse({"--budget", "1GiB"}).budget == GiB);
  CHECK(parse({"--help"}).help);
  CHECK(parse({"--admission", "on"}).admission);
  CHECK(parse({"--fairness", "barging"}).fairness == admit::Fairness::barging);
  CHECK(parse({"--fairness", "lanes", "--fairness=fifo"}).fairness == admit::Fairness::fifo);
  CHECK(parse({"--fsync", "off", "--fsync=on"}).fsync);
  CHECK(parse({"--hash-threads", "0"}).hash_threads == 0U);
  CHECK_FALSE(parse({"--hash-threads", "2", "--hash-threads=auto"}).hash_threads.has_value());
  CHECK(parse({"--buffer", "memory", "--buffer=stream"}).buffer ==
        upload_server::BufferMode::stream);
}

TEST_CASE("parse_options: a later flag overrides an earlier one", "[options]") {
  const Options o = parse({"--slots", "4", "--policy=flat:10", "--slots=8", "--policy", "tiered"});
  CHECK(o.slots == 8);
  CHECK(o.policy.name() == "tiered");
  CHECK(o.policy_text == "tiered");
}

// Test names stay clear of what Catch's command line and CMake lists read specially
// (a leading "-", "[" and ";"): each runs as its own CTest test, named by its name.
TEST_CASE("parse_options: budget auto derives the budget by a rule that a later size overrides",
          "[options][memory]") {
  const auto rule_of = [](std::string_view value) {
    const Options o = parse({"--budget", value});
    REQUIRE(o.budget_rule.has_value());
    return *o.budget_rule;
  };
  CHECK(rule_of("auto").percent == 90);
  CHECK(rule_of("auto").reserve_bytes == 0);
  CHECK(rule_of("auto:85%").percent == 85);
  CHECK(rule_of("auto:85%").reserve_bytes == 0);
  CHECK(rule_of("auto:1%").percent == 1);
  CHECK(rule_of("auto:100%-0").percent == 100);
  CHECK(rule_of("auto:100%-0").reserve_bytes == 0);
  CHECK(rule_of("auto:85%-64MiB").reserve_bytes == 64 * MiB);
  CHECK(rule_of("auto:50%-1.5GiB").reserve_bytes == 1536 * MiB);
  // The same rule budget_for applies: 85 % of (2 GiB - 64 MiB).
  const admit::MemoryFacts facts{
      .limit_bytes = 2 * GiB, .usage_bytes = 0, .source = admit::MemorySource::cgroup_v2};
  CHECK(admit::budget_for(facts, rule_of("auto:85%-64MiB")) == (2 * GiB - 64 * MiB) * 85 / 100);

  // A later flag overrides an earlier one, either way round.
  const Options sized = parse({"--budget", "auto:85%", "--budget", "300MiB"});
  CHECK_FALSE(sized.budget_rule.has_value());
  CHECK(sized.budget == 300 * MiB);
  CHECK(parse({"--budget", "300MiB", "--budget=auto"}).budget_rule.has_value());
}

TEST_CASE("parse_options refuses malformed budget rules and pressure watermarks and quotes them",
          "[options][memory]") {
  for (const std::string_view bad :
       {"auto:", "auto:0%", "auto:101%", "auto:85", "auto:%", "auto:-5%", "auto:85%-",
        "auto:85%64MiB", "auto:85%-64mib", "auto:85%-1.5B", "auto:4294967381%", "auto:85%%",
        "auto85%", "Auto", "auto:85 %"}) {
    INFO("value: '" << bad << "'");
    CHECK(parse_error({"--budget", bad}) ==
          "--budget: expected a size such as 200MiB, or auto[:PERCENT%[-SIZE]], got '" +
              std::string{bad} + "'");
  }
  CHECK(parse({"--follow-memory", "1s", "--budget=auto", "--pressure", "100%/0%"}).pressure_low ==
        0);
  for (const std::string_view bad :
       {"", "90%", "90/80", "90%/80", "80%/90%", "90%/90%", "101%/80%", "90%/-1%", "x%/80%",
        "90%/80%/70%", "%/80%", " 90%/80%", "90%/ 80%"}) {
    INFO("value: '" << bad << "'");
    CHECK(parse_error({"--budget=auto", "--follow-memory=1s", "--pressure", bad}) ==
          "--pressure: expected HIGH%/LOW% with LOW < HIGH <= 100, such as 90%/80%, got '" +
              std::string{bad} + "'");
  }
  CHECK(parse_error({"--budget=auto", "--follow-memory", "0"}) ==
        "--follow-memory: expected a duration above 0, such as 30s, got '0'");
  CHECK(parse_error({"--budget=auto", "--follow-memory", "5"}) ==
        "--follow-memory: expected a duration such as 250ms or 1.5s, got '5'");
  CHECK(parse_error({"--budget=auto", "--memory-root="}) ==
        "--memory-root: expected a directory, got ''");
}

TEST_CASE("parse_options refuses the memory flags where they would do nothing",
          "[options][memory]") {
  const std::string follow_without_auto =
      "--follow-memory: needs --budget auto[:PERCENT%[-SIZE]]; a budget given as a size does not "
      "follow the memory limit";
  CHECK(parse_error({"--follow-memory", "1s"}) == follow_without_auto);
  CHECK(parse_error({"--budget=auto", "--follow-memory=1s", "--budget", "1GiB"}) ==
        follow_without_auto);
  CHECK(parse_error({"--budget=auto", "--pressure", "95%/85%"}) ==
        "--pressure: takes effect only with --follow-memory, which reads the usage it compares");
  CHECK(parse_error({"--memory-root", "/tmp/x"}) ==
        "--memory-root: takes effect only with --budget auto[:PERCENT%[-SIZE]]");
  // Each is fine with what it needs, in any order, and --help prints the usage regardless.
  CHECK(parse({"--follow-memory", "1s", "--budget", "auto"}).follow_memory == milliseconds{1'000});
  CHECK(parse({"--memory-root", "/tmp/x", "--budget", "auto:50%"}).memory_root == "/tmp/x");
  CHECK(parse({"--follow-memory", "1s", "--help"}).help);
  CHECK(parse_error({"--max-head-wait", "2s"}) ==
        "--max-head-wait: takes effect only with --fairness lanes");
  CHECK(parse_error({"--fairness", "lanes", "--max-head-wait", "2s", "--fairness", "fifo"}) ==
        "--max-head-wait: takes effect only with --fairness lanes");
  CHECK(parse({"--max-head-wait", "2s", "--fairness", "lanes"}).max_head_wait ==
        milliseconds{2'000});
}

TEST_CASE("parse_options errors name the flag and quote the value", "[options]") {
  CHECK(parse_error({"--budget", "20x"}) ==
        "--budget: expected a size such as 200MiB, or auto[:PERCENT%[-SIZE]], got '20x'");
  CHECK(parse_error({"--budget=20x"}) ==
        "--budget: expected a size such as 200MiB, or auto[:PERCENT%[-SIZE]], got '20x'");
  CHECK(parse_error({"--port", "65536"}) ==
        "--port: expected a port number in 0..65535, got '65536'");
  CHECK(parse_error({"--port", "-1"}) == "--port: expected a port number in 0..65535, got '-1'");
  CHECK(parse_error({"--slots", "0"}) == "--slots: expected a slot count in 1..1048575, got '0'");
  CHECK(parse_error({"--slots", "1048576"}) ==
        "--slots: expected a slot count in 1..1048575, got '1048576'");
  CHECK(parse_error({"--budget", "0"}) ==
        "--budget: expected a budget of 1B to 8796093022207B, got '0'");
  CHECK(parse_error({"--budget", "8TiB"}) ==
        "--budget: expected a budget of 1B to 8796093022207B, got '8TiB'");
  CHECK(contains(parse_error({"--policy", "flat:0"}), "--policy: expected tiered,"));
  CHECK(contains(parse_error({"--policy", "flat:0"}), "got 'flat:0'"));
  CHECK(parse_error({"--admission", "yes"}) == "--admission: expected on or off, got 'yes'");
  CHECK(parse_error({"--fsync", "no"}) == "--fsync: expected on or off, got 'no'");
  CHECK(parse_error({"--fsync"}) == "--fsync: missing value");
  CHECK(parse_error({"--fairness", "fair"}) ==
        "--fairness: expected fifo, barging or lanes, got 'fair'");
  CHECK(parse_error({"--max-head-wait", "1"}) ==
        "--max-head-wait: expected a duration such as 250ms or 1.5s, got '1'");
  CHECK(parse_error({"--buffer", "ram"}) == "--buffer: expected stream or memory, got 'ram'");
  CHECK(parse_error({"--buffer="}) == "--buffer: expected stream or memory, got ''");
  CHECK(parse_error({"--buffer"}) == "--buffer: missing value");
  CHECK(parse_error({"--track-reservations", "yes"}) ==
        "--track-reservations: expected on or off, got 'yes'");
  CHECK(parse_error({"--hash-threads", "65"}) ==
        "--hash-threads: expected auto or a thread count in 0..64, got '65'");
  CHECK(parse_error({"--hash-threads", "-1"}) ==
        "--hash-threads: expected auto or a thread count in 0..64, got '-1'");
  CHECK(parse_error({"--wait", "5"}) ==
        "--wait: expected a duration such as 250ms or 1.5s, got '5'");
  CHECK(parse_error({"--max-body", "0"}) == "--max-body: expected a size of at least 1B, got '0'");
  CHECK(parse_error({"--host="}) == "--host: expected a host name or address, got ''");
  CHECK(parse_error({"--dir", ""}) == "--dir: expected a directory, got ''");
  CHECK(parse_error({"--port", "1", "--grace"}) == "--grace: missing value");
  CHECK(parse_error({"--help=yes"}) == "--help: takes no value, got 'yes'");
  CHECK(parse_error({"--frobnicate", "1"}) == "unknown flag '--frobnicate' (see --help)");
  CHECK(parse_error({"--frobnicate=1"}) == "unknown flag '--frobnicate' (see --help)");
  CHECK(parse_error({"-p"}) == "unknown flag '-p' (see --help)");
  CHECK(parse_error({"8080"}) == "unexpected argument '8080' (see --help)");
  CHECK(parse_error({"--body-timeout", "0"}) ==
        "--body-timeout: expected a duration above 0, such as 30s, got '0'");
  CHECK(parse_error({"--first-message-timeout", "0"}) ==
        "--first-message-timeout: expected a duration above 0, such as 30s, got '0'");
  CHECK(parse_error({"--max-connections", "-5"}) ==
        "--max-connections: expected a connection count in 0..1000000 (0: from the descriptor "
        "limit), got '-5'");
  CHECK(parse_error({"--max-connections-per-ip", "x"}) ==
        "--max-connections-per-ip: expected a connection count in 0..1000000 (0: no cap), got "
        "'x'");
  CHECK(parse_error({"--min-rate", "fast"}) ==
        "--min-rate: expected a size such as 200MiB, got 'fast'");
}

TEST_CASE("usage names the program and documents every flag", "[options]") {
  const std::string text = upload_server::usage("upload_server");
  CHECK(text.starts_with("usage: upload_server [flags]\n"));
  const std::vector<std::string_view> every_flag{"--host",
                                                 "--port",
                                                 "--dir",
                                                 "--budget",
                                                 "--slots",
                                                 "--policy",
                                                 "--wait",
                                                 "--fairness",
                                                 "--max-head-wait",
                                                 "--max-body",
                                                 "--admission",
                                                 "--fsync",
                                                 "--hash-threads",
                                                 "--grace",
                                                 "--buffer",
                                                 "--track-reservations",
                                                 "--body-timeout",
                                                 "--min-rate",
                                                 "--header-timeout",
                                                 "--first-message-timeout",
                                                 "--max-connections",
                                                 "--max-connections-per-ip",
                                                 "--follow-memory",
                                                 "--pressure",
                                                 "--memory-root",
                                                 "--partition",
                                                 "--tenant-header",
                                                 "--bypass-token",
                                                 "--help"};
  for (const std::string_view flag : every_flag) {
    INFO(flag);
    CHECK(contains(text, "\n  " + std::string{flag} + " "));
  }
}
