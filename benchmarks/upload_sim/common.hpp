// benchmarks/upload_sim/common.hpp - what every part of admit_upload_sim uses.
#pragma once

#include <admit/admit.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
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

namespace admit_sim {

using admit::GiB;
using admit::KiB;
using admit::MiB;
using admit::TiB;

inline constexpr std::int64_t ns_per_s = 1'000'000'000;

}  // namespace admit_sim
