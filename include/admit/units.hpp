// admit/units.hpp - byte-size constants.
//
// Sizes in admit are plain std::uint64_t byte counts; these constants make the
// binary units explicit at the call site (`200 * admit::MiB`). They are binary
// (IEC) units: 1 MiB = 1024 * 1024 bytes, as the default tier table uses.
#pragma once

#include <cstdint>

namespace admit {

inline constexpr std::uint64_t KiB = std::uint64_t{1} << 10;
inline constexpr std::uint64_t MiB = std::uint64_t{1} << 20;
inline constexpr std::uint64_t GiB = std::uint64_t{1} << 30;
inline constexpr std::uint64_t TiB = std::uint64_t{1} << 40;

}  // namespace admit
