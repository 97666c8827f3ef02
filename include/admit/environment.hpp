// admit/environment.hpp - how much memory this process may really use, and a
// memory budget derived from it.
//
// A SlotPool's memory_budget is only honest if it fits the limit the process
// runs under. Inside a container that limit is the cgroup's, not the
// machine's: a server that sizes itself from /proc/meminfo in a 2 GiB pod on a
// 64 GiB node is killed by the OOM killer long before it refuses an upload.
// read_memory_facts() finds the tightest limit that applies and what is in use
// against it; budget_for() turns that into a budget for PoolConfig.
//
// Where the figures come from (Linux; elsewhere read_memory_facts() finds
// nothing):
//   1. /proc/self/cgroup names the process's cgroup: "0::/path" for cgroup v2,
//      "N:...memory...:/path" for the v1 memory controller. A hybrid system
//      lists both; the hierarchy that has the memory files is used, v2 first.
//   2. v2 (/sys/fs/cgroup/<path>, or /sys/fs/cgroup/unified/<path> on hybrid
//      systems): memory.max and memory.current on every level from the mount
//      root down to the process's cgroup; an ancestor's limit binds too (a
//      pod's limit sits on the parent of the container's cgroup).
//      v1 (/sys/fs/cgroup/memory/<path>): memory.stat's
//      hierarchical_memory_limit, which the kernel computes over all
//      ancestors, else memory.limit_in_bytes on every level; and
//      memory.usage_in_bytes.
//      A listed path that does not exist under the mount is a container that
//      sees its own cgroup as the mount root: the mount root is used.
//   3. /proc/meminfo: MemTotal, and MemTotal - MemAvailable as the usage
//      (MemTotal - MemFree - Buffers - Cached on kernels before 3.14, which
//      have no MemAvailable).
//
// The rules:
//   - The tightest limit on the path counts; on a tie the ancestor's, whose
//     usage includes its descendants'. usage_bytes is that cgroup's usage,
//     else (unreadable, or a v1 limit set above a container's mount root, on
//     no level it can see) the process's own cgroup's, else MemTotal -
//     MemAvailable.
//   - "No limit" is v2's "max", v1's LONG_MAX rounded down to the page size
//     (9223372036854771712 with 4 KiB pages) and any limit above MemTotal:
//     then the limit is MemTotal, source is meminfo, and usage_bytes is the
//     process's own cgroup's usage when one is readable (the deepest level
//     that has a usage file), else MemTotal - MemAvailable.
//   - A file is usable only when it holds exactly one decimal integer (or v2's
//     "max"), optionally followed by a newline. An unusable limit file is "no
//     limit on that level"; an unusable usage file is "that cgroup's usage is
//     unknown", and the next usage in the order above is taken.
//   - A limit with no usage anywhere, or no limit and no MemTotal, is nothing
//     usable: nullopt. Reads are bounded and open regular files only
//     (detail/kernel_files.hpp), and nothing throws.
//
// The figures are a snapshot: usage moves all the time, and a limit can be
// changed while the process runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

#include "config.hpp"          // PoolConfig::max_memory_budget, which budget_for saturates to
#include "detail/failure.hpp"  // ADMIT_HAS_EXCEPTIONS: no try block without exceptions
#include "detail/kernel_files.hpp"

namespace admit {

/// Where MemoryFacts::limit_bytes came from.
enum class MemorySource {
  cgroup_v2,  ///< a cgroup v2 memory.max on the process's cgroup or an ancestor
  cgroup_v1,  ///< the cgroup v1 memory controller's limit
  meminfo,    ///< no cgroup limit binds: the machine's MemTotal
};

/// The enumerator's name ("cgroup_v2", ...), stable for logs.
[[nodiscard]] constexpr std::string_view to_string(MemorySource source) noexcept {
  switch (source) {
    case MemorySource::cgroup_v2:
      return "cgroup_v2";
    case MemorySource::cgroup_v1:
      return "cgroup_v1";
    case MemorySource::meminfo:
      return "meminfo";
  }
  return "unknown";
}

/// A snapshot of the memory this process may use.
struct MemoryFacts {
  std::uint64_t limit_bytes;  ///< the tightest memory limit on this process
  std::uint64_t usage_bytes;  ///< what it (its cgroup) uses now; may exceed the limit briefly
  MemorySource source;

  friend bool operator==(const MemoryFacts&, const MemoryFacts&) = default;
};

namespace detail {

namespace kf = kernel_files;
namespace fs = std::filesystem;

/// cgroup v1 writes "no limit" as LONG_MAX rounded down to the page size;
/// everything from here up is that value for pages of up to 1 MiB.
inline constexpr std::uint64_t v1_no_limit_floor =
    (std::uint64_t{1} << 63) - (std::uint64_t{1} << 20);

/// What one cgroup hierarchy says. `limit` is the tightest real limit on the
/// path and `limit_usage` the usage of the cgroup that has it; `own_usage` is
/// the usage of the deepest level with a usable usage file.
struct CgroupMemory {
  MemorySource source;
  std::optional<std::uint64_t> limit = std::nullopt;
  std::optional<std::uint64_t> limit_usage = std::nullopt;
  std::optional<std::uint64_t> own_usage = std::nullopt;

  [[nodiscard]] bool found() const noexcept { return limit || own_usage; }
};

[[nodiscard]] inline std::optional<std::uint64_t> read_value(const fs::path& file) {
  const auto text = kf::read_small_file(file);
  return text ? kf::parse_value_file(*text) : std::nullopt;
}

/// The directories from `mount` down to the cgroup at `cgroup_path`, mount
/// first; just the mount when that cgroup is not there (a container whose
/// own cgroup is the mount root, a removed cgroup listed as "/x (deleted)",
/// or a path that climbs out with ".." from another cgroup namespace); empty
/// when there is no such mount.
[[nodiscard]] inline std::vector<fs::path> cgroup_levels(const fs::path& mount,
                                                         std::string_view cgroup_path) {
  std::error_code ec;
  if (!fs::is_directory(mount, ec)) return {};
  std::vector<fs::path> levels{mount};
  for (const fs::path& part : fs::path{cgroup_path}.relative_path()) {
    if (part == "..") return {mount};
    if (part.empty() || part == ".") continue;
    levels.push_back(levels.back() / part);
  }
  if (!fs::is_directory(levels.back(), ec)) return {mount};
  return levels;
}

[[nodiscard]] inline CgroupMemory read_v2(const std::vector<fs::path>& levels) {
  CgroupMemory memory{.source = MemorySource::cgroup_v2};
  for (const fs::path& level : levels) {  // mount first: strict < keeps the ancestor on a tie
    const std::optional<std::uint64_t> usage = read_value(level / "memory.current");
    // "max" is no limit on this level, and so is a missing or unusable file.
    const std::optional<std::uint64_t> limit = read_value(level / "memory.max");
    if (limit && (!memory.limit || *limit < *memory.limit)) {
      memory.limit = limit;
      memory.limit_usage = usage;
    }
    if (usage) memory.own_usage = usage;
  }
  return memory;
}

[[nodiscard]] inline CgroupMemory read_v1(const std::vector<fs::path>& levels) {
  CgroupMemory memory{.source = MemorySource::cgroup_v1};
  std::vector<std::optional<std::uint64_t>> limits;
  std::vector<std::optional<std::uint64_t>> usages;
  for (const fs::path& level : levels) {
    std::optional<std::uint64_t> limit = read_value(level / "memory.limit_in_bytes");
    if (limit && *limit >= v1_no_limit_floor) limit.reset();
    limits.push_back(limit);
    usages.push_back(read_value(level / "memory.usage_in_bytes"));
    if (usages.back()) memory.own_usage = usages.back();
  }
  if (levels.empty()) return memory;

  // The kernel's own answer covers ancestors above a container's mount root
  // too; which level holds it is only needed for the usage.
  std::optional<std::uint64_t> hierarchical;
  if (const auto stat = kf::read_small_file(levels.back() / "memory.stat")) {
    hierarchical = kf::stat_value(*stat, "hierarchical_memory_limit");
  }
  if (hierarchical) {
    if (*hierarchical >= v1_no_limit_floor) return memory;
    memory.limit = hierarchical;
    for (std::size_t i = 0; i < levels.size(); ++i) {
      if (limits[i] == hierarchical) {
        memory.limit_usage = usages[i];
        break;
      }
    }
    return memory;
  }
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (limits[i] && (!memory.limit || *limits[i] < *memory.limit)) {
      memory.limit = limits[i];
      memory.limit_usage = usages[i];
    }
  }
  return memory;
}

[[nodiscard]] inline std::optional<CgroupMemory> read_cgroup(const fs::path& root) {
  const auto proc = kf::read_small_file(root / "proc/self/cgroup");
  if (!proc) return std::nullopt;
  const kf::ProcCgroup paths = kf::parse_proc_cgroup(*proc);
  const fs::path base = root / "sys/fs/cgroup";
  if (paths.v2_path) {
    for (const fs::path& mount : {base, base / "unified"}) {
      const CgroupMemory memory = read_v2(cgroup_levels(mount, *paths.v2_path));
      if (memory.found()) return memory;
    }
  }
  if (paths.v1_memory_path) {
    const CgroupMemory memory = read_v1(cgroup_levels(base / "memory", *paths.v1_memory_path));
    if (memory.found()) return memory;
  }
  return std::nullopt;
}

struct Meminfo {
  std::uint64_t total;
  std::optional<std::uint64_t> used;
};

[[nodiscard]] inline std::optional<Meminfo> read_meminfo(const fs::path& root) {
  const auto text = kf::read_small_file(root / "proc/meminfo");
  if (!text) return std::nullopt;
  const auto total = kf::meminfo_bytes(*text, "MemTotal");
  if (!total || *total == 0) return std::nullopt;
  Meminfo info{.total = *total, .used = std::nullopt};
  // What is not free, never below 0: a test root may claim more free than total.
  const auto used_besides = [&](std::uint64_t free) {
    return free < *total ? *total - free : std::uint64_t{0};
  };
  if (const auto available = kf::meminfo_bytes(*text, "MemAvailable")) {
    info.used = used_besides(*available);
  } else {
    const auto free = kf::meminfo_bytes(*text, "MemFree");
    const auto buffers = kf::meminfo_bytes(*text, "Buffers");
    const auto cached = kf::meminfo_bytes(*text, "Cached");
    if (free && buffers && cached) {
      // Each is below MemTotal on a real kernel; on a garbage file the sum must not wrap.
      const auto add = [](std::uint64_t a, std::uint64_t b) {
        return b > std::numeric_limits<std::uint64_t>::max() - a
                   ? std::numeric_limits<std::uint64_t>::max()
                   : a + b;
      };
      info.used = used_besides(add(add(*free, *buffers), *cached));
    }
  }
  return info;
}

[[nodiscard]] inline std::optional<MemoryFacts> memory_facts_at(const fs::path& root) {
  const std::optional<CgroupMemory> cgroup = read_cgroup(root);
  const std::optional<Meminfo> meminfo = read_meminfo(root);
  const std::optional<std::uint64_t> meminfo_used = meminfo ? meminfo->used : std::nullopt;
  if (cgroup && cgroup->limit && (!meminfo || *cgroup->limit <= meminfo->total)) {
    const auto usage = cgroup->limit_usage ? cgroup->limit_usage
                       : cgroup->own_usage ? cgroup->own_usage
                                           : meminfo_used;
    if (!usage) return std::nullopt;
    return MemoryFacts{
        .limit_bytes = *cgroup->limit, .usage_bytes = *usage, .source = cgroup->source};
  }
  if (!meminfo) return std::nullopt;
  const auto usage = cgroup && cgroup->own_usage ? cgroup->own_usage : meminfo_used;
  if (!usage) return std::nullopt;
  return MemoryFacts{
      .limit_bytes = meminfo->total, .usage_bytes = *usage, .source = MemorySource::meminfo};
}

}  // namespace detail

/// The memory limit this process runs under and its usage, read from the
/// files under `root` (tests pass a directory laid out like /): see the top
/// of this file for the files and rules. nullopt when nothing usable is
/// there, on a system other than Linux, and when memory runs out while
/// reading.
[[nodiscard]] inline std::optional<MemoryFacts> read_memory_facts(
    const std::filesystem::path& root = "/") noexcept {
#if !defined(__linux__)
  static_cast<void>(root);
  return std::nullopt;
#elif ADMIT_HAS_EXCEPTIONS
  // Only allocation can throw here: every <filesystem> call takes an error_code.
  try {
    return detail::memory_facts_at(root);
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
#else
  return detail::memory_facts_at(root);
#endif
}

/// How much of the limit a pool may budget: `percent` of what is left after
/// `reserve_bytes` (for the heap, the stack, buffers outside the pool).
struct BudgetRule {
  unsigned percent = 90;            ///< clamped to 100
  std::uint64_t reserve_bytes = 0;  ///< taken off the limit first
};

/// (limit - reserve) * percent / 100, rounded down and exact for every input,
/// saturated to [0, PoolConfig::max_memory_budget]. 0 (reserve at or above the
/// limit, or percent 0) is not a valid PoolConfig::memory_budget: the caller
/// decides what a process with no room should do.
[[nodiscard]] constexpr std::uint64_t budget_for(const MemoryFacts& facts,
                                                 const BudgetRule& rule) noexcept {
  if (rule.reserve_bytes >= facts.limit_bytes) return 0;
  const std::uint64_t usable = facts.limit_bytes - rule.reserve_bytes;
  const std::uint64_t percent = rule.percent < 100 ? rule.percent : 100;
  // usable * percent could wrap; splitting usable = 100 q + r keeps every
  // intermediate at most usable, and floor(q p + r p / 100) is the exact result.
  const std::uint64_t budget = usable / 100 * percent + usable % 100 * percent / 100;
  return budget < PoolConfig::max_memory_budget ? budget : PoolConfig::max_memory_budget;
}

}  // namespace admit
