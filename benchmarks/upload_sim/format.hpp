// benchmarks/upload_sim/format.hpp - sizes, durations and percentages for humans.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"

namespace admit_sim {

// --- Formatting ----------------------------------------------------------------

inline std::string printf_string(const char* format, auto... args) {
  std::array<char, 128> buffer{};
  const int n = std::snprintf(buffer.data(), buffer.size(), format, args...);
  return std::string{
      buffer.data(),
      n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), buffer.size() - 1)};
}

inline std::string format_bytes(double bytes) {
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

inline std::string format_duration(std::int64_t ns) {
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

/// A wait: "0" rather than "0 us", since most uploads of a class are often
/// admitted at once and a bare 0 is easier to tell from a short wait.
inline std::string format_wait(std::int64_t ns) { return ns == 0 ? "0" : format_duration(ns); }

inline std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  return printf_string("%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

}  // namespace admit_sim
