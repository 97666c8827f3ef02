// memory_files.cpp - the readers of the kernel's memory files against
// reference parsers written differently, and read_memory_facts() over a fake
// root whose files the fuzzer writes.
//
// The first byte picks a reader; the rest is the file's text:
//   parse_decimal, parse_value_file  vs a digit-by-digit reference that checks
//                                    overflow by comparing against the digits
//                                    of UINT64_MAX
//   stat_value (memory.stat)         vs the first "key value" line, found with
//                                    std::string searches
//   meminfo_bytes (/proc/meminfo)    vs the first "Key:  N kB" line, the same
//   parse_proc_cgroup                vs the last v2 ("0::/p") and the last v1
//                                    memory line, split with std::string
//   parse_psi_some_avg10             vs an integer reading of the same digits,
//                                    in [0, 100]
//   read_memory_facts + budget_for   over /proc and /sys/fs/cgroup files cut
//                                    from the input: never throws, finds a
//                                    limit only if one of the files holds it
//                                    (or MemTotal does), and the budget never
//                                    exceeds the limit or PoolConfig's maximum
#include <admit/environment.hpp>

#include <unistd.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"

namespace {

namespace kf = admit::detail::kernel_files;
using std::optional;
using std::string_view;

optional<std::uint64_t> reference_decimal(string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != string_view::npos) return {};
  const string_view digits = text.substr(std::min(text.find_first_not_of('0'), text.size() - 1));
  constexpr string_view max = "18446744073709551615";
  if (digits.size() > max.size() || (digits.size() == max.size() && digits > max)) return {};
  std::uint64_t value = 0;
  for (const char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  return value;
}

std::vector<string_view> lines(string_view text) {
  std::vector<string_view> result;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == string_view::npos) {
      result.push_back(text.substr(start));
      break;
    }
    result.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return result;
}

void check_decimal(string_view text) {
  ADMIT_FUZZ_CHECK(kf::parse_decimal(text) == reference_decimal(text), "parse_decimal");
  const string_view stripped =
      !text.empty() && text.back() == '\n' ? text.substr(0, text.size() - 1) : text;
  ADMIT_FUZZ_CHECK(kf::parse_value_file(text) == reference_decimal(stripped), "parse_value_file");
}

void check_stat(string_view text, string_view key) {
  optional<std::uint64_t> expected;
  for (const string_view line : lines(text)) {
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      expected = reference_decimal(line.substr(key.size() + 1));
      break;
    }
  }
  ADMIT_FUZZ_CHECK(kf::stat_value(text, key) == expected, "stat_value");
}

void check_meminfo(string_view text, string_view key) {
  optional<std::uint64_t> expected;
  for (string_view line : lines(text)) {
    if (line.size() <= key.size() || !line.starts_with(key) || line[key.size()] != ':') continue;
    line.remove_prefix(key.size() + 1);
    line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
    if (line.size() > 3 && line.ends_with(" kB")) {
      const optional<std::uint64_t> kib = reference_decimal(line.substr(0, line.size() - 3));
      if (kib && *kib <= UINT64_MAX / 1024) expected = *kib * 1024;
    }
    break;
  }
  ADMIT_FUZZ_CHECK(kf::meminfo_bytes(text, key) == expected, "meminfo_bytes");
}

void check_proc_cgroup(string_view text) {
  optional<std::string> v2;
  optional<std::string> v1;
  for (const string_view line : lines(text)) {
    const std::size_t first = line.find(':');
    const std::size_t second = first == string_view::npos ? first : line.find(':', first + 1);
    if (second == string_view::npos) continue;
    const string_view path = line.substr(second + 1);
    if (!path.starts_with('/')) continue;
    const std::string controllers{line.substr(first + 1, second - first - 1)};
    if (line.substr(0, first) == "0" && controllers.empty()) {
      v2 = std::string{path};
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      v1 = std::string{path};
    }
  }
  const kf::ProcCgroup parsed = kf::parse_proc_cgroup(text);
  ADMIT_FUZZ_CHECK(parsed.v2_path == v2, "parse_proc_cgroup: the v2 path");
  ADMIT_FUZZ_CHECK(parsed.v1_memory_path == v1, "parse_proc_cgroup: the v1 memory path");
}

void check_psi(string_view text) {
  optional<double> expected;
  constexpr string_view prefix = "some avg10=";
  if (text.starts_with(prefix)) {
    const string_view rest = text.substr(prefix.size());
    std::size_t i = 0;
    while (i < rest.size() && i < 3 && rest[i] >= '0' && rest[i] <= '9') ++i;
    const string_view whole = rest.substr(0, i);
    std::size_t decimals = 0;
    bool valid = i > 0;
    if (valid && i < rest.size() && rest[i] == '.') {
      ++i;
      while (i < rest.size() && decimals < 6 && rest[i] >= '0' && rest[i] <= '9') ++i, ++decimals;
      valid = decimals > 0;
    }
    valid = valid && (i == rest.size() || rest[i] == ' ' || rest[i] == '\n');
    if (valid) {
      // Without a fraction there is no '.' to skip: "some avg10=00" ends at `whole`.
      const double fraction =
          decimals == 0
              ? 0.0
              : static_cast<double>(*reference_decimal(rest.substr(whole.size() + 1, decimals))) /
                    std::pow(10.0, static_cast<double>(decimals));
      const double value = static_cast<double>(*reference_decimal(whole)) + fraction;
      if (value <= 100) expected = value;
    }
  }
  const optional<double> parsed = kf::parse_psi_some_avg10(text);
  ADMIT_FUZZ_CHECK(parsed.has_value() == expected.has_value(), "parse_psi_some_avg10: accepted");
  if (parsed) {
    ADMIT_FUZZ_CHECK(*parsed >= 0 && *parsed <= 100, "parse_psi_some_avg10: out of [0, 100]");
    ADMIT_FUZZ_CHECK(std::fabs(*parsed - *expected) < 1e-6, "parse_psi_some_avg10: the value");
  }
}

/// A directory for this process's fake roots, created once, removed at exit.
class Scratch {
 public:
  Scratch() {
    path_ = std::filesystem::temp_directory_path() /
            ("admit-fuzz-memory-files-" + std::to_string(::getpid()));
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// The files read_memory_facts() reads, each with a piece of the input.
constexpr std::string_view fake_files[] = {
    "proc/self/cgroup",
    "proc/meminfo",
    "sys/fs/cgroup/memory.max",
    "sys/fs/cgroup/memory.current",
    "sys/fs/cgroup/a/memory.max",
    "sys/fs/cgroup/a/memory.current",
    "sys/fs/cgroup/unified/memory.max",
    "sys/fs/cgroup/memory/memory.stat",
    "sys/fs/cgroup/memory/memory.limit_in_bytes",
    "sys/fs/cgroup/memory/memory.usage_in_bytes",
    "sys/fs/cgroup/memory/a/memory.limit_in_bytes",
    "sys/fs/cgroup/memory/a/memory.stat",
};

void check_fake_root(admit_fuzz::FuzzInput& in) {
  static const Scratch scratch;
  const std::filesystem::path& root = scratch.path();
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  std::vector<std::string> written;
  for (const std::string_view file : fake_files) {
    if (!in.flag()) continue;  // a missing file is a case too
    std::string text = in.text(96);
    const std::filesystem::path path = root / file;
    std::filesystem::create_directories(path.parent_path(), ec);
    std::ofstream{path, std::ios::binary} << text;
    written.push_back(std::move(text));
  }
  const optional<admit::MemoryFacts> facts = admit::read_memory_facts(root);
  if (!facts) return;
  // A limit is a number some file holds (a meminfo figure is in kB).
  bool from_a_file = false;
  for (const std::string& text : written) {
    from_a_file = from_a_file ||
                  text.find(std::to_string(facts->limit_bytes)) != std::string::npos ||
                  (facts->limit_bytes % 1024 == 0 &&
                   text.find(std::to_string(facts->limit_bytes / 1024)) != std::string::npos);
  }
  ADMIT_FUZZ_CHECK(from_a_file, "read_memory_facts found a limit that no file holds");
  ADMIT_FUZZ_CHECK(facts->limit_bytes > 0, "read_memory_facts found a limit of 0 bytes");
  const admit::BudgetRule rule{static_cast<unsigned>(in.in_range(0, 200)), in.bits(8)};
  const std::uint64_t budget = admit::budget_for(*facts, rule);
  ADMIT_FUZZ_CHECK(budget <= facts->limit_bytes, "budget_for exceeds the limit");
  ADMIT_FUZZ_CHECK(budget <= admit::PoolConfig::max_memory_budget,
                   "budget_for exceeds PoolConfig::max_memory_budget");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  admit_fuzz::FuzzInput in{data, size};
  switch (in.byte() % 7) {
    case 0:
      check_decimal(in.rest());
      break;
    case 1:
      check_stat(in.rest(), "hierarchical_memory_limit");
      break;
    case 2:
      check_stat(in.rest(), "total_inactive_file");
      break;
    case 3:
      check_meminfo(in.rest(), in.flag() ? "MemTotal" : "MemAvailable");
      break;
    case 4:
      check_proc_cgroup(in.rest());
      break;
    case 5:
      check_psi(in.rest());
      break;
    default:
      check_fake_root(in);
      break;
  }
  return 0;
}
