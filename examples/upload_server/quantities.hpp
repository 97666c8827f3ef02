// quantities.hpp - sizes and durations as an operator types them on the command
// line: "200MiB", "2GB", "1.5s".
//
// Both parsers are exact: a value is accepted only when it is a whole number of
// bytes (or milliseconds) that fits its type, so "1.5GiB" is fine but "1.5B",
// "0.5ms" and "16EiB" are refused rather than rounded or wrapped.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace upload_server {

/// A byte count: a decimal number with an optional unit. Binary units (B, KiB,
/// MiB, GiB, TiB) and decimal ones (kB or KB, MB, GB, TB) are spelled out so
/// that "MB" never silently means MiB. Throws std::invalid_argument, whose
/// message quotes `text`, on anything else or on overflow.
[[nodiscard]] std::uint64_t parse_size(std::string_view text);

/// A duration: "0", or a decimal number with a unit of ms, s, m or h ("250ms",
/// "1.5s", "1m"). Throws std::invalid_argument, quoting `text`, otherwise.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);

}  // namespace upload_server
