// admit/detail/kernel_files.hpp - reading and parsing the kernel's small text files.
//
// environment.hpp learns the memory limit from files under /proc and
// /sys/fs/cgroup. They are tiny and written by the kernel, but a test root, a
// container runtime or a half-removed cgroup can put anything there, so every
// parser here is strict: a figure is usable only when the whole file (or line)
// is exactly what the kernel writes; anything else is "not usable", never a
// guess. Reads are bounded and open regular files only, so a FIFO or a huge
// file planted where a cgroup file should be cannot hang or exhaust a server
// that merely asked how much memory it has.
//
// Nothing here throws on bad input; only allocation can fail (std::bad_alloc),
// which environment.hpp's callers turn into "nothing found".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace admit::detail::kernel_files {

/// Cgroup and proc files are a few hundred bytes (memory.stat a few KiB); a
/// file larger than this is not one of them, and a truncated read would parse
/// as a wrong figure, so it is refused whole.
inline constexpr std::size_t max_file_bytes = 64 * 1024;

/// The contents of the regular file at `path`, or nullopt when it is missing,
/// not a regular file (a FIFO would block the open), unreadable or larger
/// than max_file_bytes. /proc files report size 0, so the size is learnt by
/// reading, not from the directory entry.
[[nodiscard]] inline std::optional<std::string> read_small_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in{path, std::ios::binary};
  if (!in) return std::nullopt;
  std::string text;
  char chunk[4096];
  while (in) {
    in.read(chunk, static_cast<std::streamsize>(sizeof chunk));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    text.append(chunk, static_cast<std::size_t>(got));
    if (text.size() > max_file_bytes) return std::nullopt;
  }
  if (in.bad()) return std::nullopt;
  return text;
}

/// `text` as a std::uint64_t when it is one or more decimal digits and
/// nothing else: no sign, no spaces, no overflow.
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// A one-value file's value without its single trailing newline, the form
/// the kernel writes ("4096\n").
[[nodiscard]] constexpr std::string_view strip_newline(std::string_view text) noexcept {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return text;
}

/// A file that holds one decimal integer, optionally followed by a newline.
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_value_file(
    std::string_view text) noexcept {
  return parse_decimal(strip_newline(text));
}

/// Calls `f(line)` for every line of `text`, without its newline, until `f`
/// returns true; returns whether it did.
template <class F>
constexpr bool any_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    if (f(line)) return true;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return false;
}

/// The value of `key` in a memory.stat-like file ("key value" lines), or
/// nullopt when the key is missing or its value is not a decimal integer.
[[nodiscard]] constexpr std::optional<std::uint64_t> stat_value(std::string_view text,
                                                                std::string_view key) noexcept {
  std::optional<std::uint64_t> found;
  any_line(text, [&](std::string_view line) {
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ') {
      return false;
    }
    found = parse_decimal(line.substr(key.size() + 1));
    return true;
  });
  return found;
}

/// The figure of `key` in /proc/meminfo ("MemTotal:       24683628 kB"), in
/// bytes; nullopt when the line is missing or malformed, or the bytes overflow.
[[nodiscard]] constexpr std::optional<std::uint64_t> meminfo_bytes(std::string_view text,
                                                                   std::string_view key) noexcept {
  std::optional<std::uint64_t> found;
  any_line(text, [&](std::string_view line) {
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':') {
      return false;
    }
    line.remove_prefix(key.size() + 1);
    const std::size_t digits = line.find_first_not_of(' ');
    if (digits == std::string_view::npos) return true;
    line.remove_prefix(digits);
    constexpr std::string_view unit = " kB";
    if (line.size() <= unit.size() || line.substr(line.size() - unit.size()) != unit) return true;
    line.remove_suffix(unit.size());
    const auto kib = parse_decimal(line);
    if (kib && *kib <= std::numeric_limits<std::uint64_t>::max() / 1024) found = *kib * 1024;
    return true;
  });
  return found;
}

/// The cgroup paths of /proc/self/cgroup that matter for memory. Its lines
/// are "hierarchy-id:controllers:path": "0::/path" is the v2 hierarchy, and a
/// v1 line whose comma-separated controllers include "memory" is the v1
/// memory controller. Both may be present (a hybrid hierarchy).
struct ProcCgroup {
  std::optional<std::string> v2_path;
  std::optional<std::string> v1_memory_path;
};

[[nodiscard]] inline ProcCgroup parse_proc_cgroup(std::string_view text) {
  ProcCgroup result;
  any_line(text, [&](std::string_view line) {
    const std::size_t first = line.find(':');
    if (first == std::string_view::npos) return false;
    const std::size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) return false;
    const std::string_view id = line.substr(0, first);
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string_view path = line.substr(second + 1);  // a path may itself hold ':'
    if (path.empty() || path.front() != '/') return false;
    if (id == "0" && controllers.empty()) {
      result.v2_path.emplace(path);
      return false;
    }
    while (!controllers.empty()) {
      const std::size_t comma = controllers.find(',');
      if (controllers.substr(0, comma) == "memory") {
        result.v1_memory_path.emplace(path);
        break;
      }
      if (comma == std::string_view::npos) break;
      controllers.remove_prefix(comma + 1);
    }
    return false;
  });
  return result;
}

/// The "some avg10" figure of a PSI file (/proc/pressure/memory, a cgroup's
/// memory.pressure): the percentage of the last 10 s in which at least one
/// task stalled on memory. Its first line reads
/// "some avg10=1.53 avg60=0.20 avg300=0.04 total=123456"; the figure is
/// digits, optionally a point and more digits, in 0..100. nullopt otherwise.
[[nodiscard]] inline std::optional<double> parse_psi_some_avg10(std::string_view text) {
  constexpr std::string_view prefix = "some avg10=";
  if (!text.starts_with(prefix)) return std::nullopt;
  text.remove_prefix(prefix.size());
  // Parsed by hand: std::from_chars for double is missing from libc++ 14, and
  // strtod depends on the locale's decimal point.
  double value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && i < 3; ++i) {
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    double scale = 0.1;
    const std::size_t first_decimal = ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && i < first_decimal + 6; ++i) {
      value += (text[i] - '0') * scale;
      scale /= 10;
    }
    if (i == first_decimal) return std::nullopt;
  }
  if (i < text.size() && text[i] != ' ' && text[i] != '\n') return std::nullopt;
  if (value > 100) return std::nullopt;
  return value;
}

}  // namespace admit::detail::kernel_files
