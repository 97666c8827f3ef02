// admit/detail/memory_facts.hpp - how read_memory_facts() finds the limit:
// the cgroup v2 and v1 hierarchies and /proc/meminfo, under a root. Included
// at the end of environment.hpp, which declares read_memory_facts and
// read_memory_pressure and states the files and the rules this follows; split
// only to keep each file readable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <system_error>
#include <vector>

#include "../environment.hpp"
#include "failure.hpp"  // ADMIT_HAS_EXCEPTIONS: no try block without exceptions
#include "kernel_files.hpp"

namespace admit {

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

/// PSI's memory "some avg10": the process's own cgroup v2 memory.pressure
/// when there is one (what stalls this container), else the machine's
/// /proc/pressure/memory.
[[nodiscard]] inline std::optional<double> memory_pressure_at(const fs::path& root) {
  if (const auto proc = kf::read_small_file(root / "proc/self/cgroup")) {
    const kf::ProcCgroup paths = kf::parse_proc_cgroup(*proc);
    const fs::path base = root / "sys/fs/cgroup";
    if (paths.v2_path) {
      for (const fs::path& mount : {base, base / "unified"}) {
        const std::vector<fs::path> levels = cgroup_levels(mount, *paths.v2_path);
        if (levels.empty()) continue;
        if (const auto text = kf::read_small_file(levels.back() / "memory.pressure")) {
          return kf::parse_psi_some_avg10(*text);
        }
      }
    }
  }
  const auto text = kf::read_small_file(root / "proc/pressure/memory");
  if (!text) return std::nullopt;
  return kf::parse_psi_some_avg10(*text);
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

// Only allocation can throw in the readers: every <filesystem> call takes an
// error_code, and running out of memory while reading is "nothing usable".
template <class Read>
[[nodiscard]] auto nullopt_on_bad_alloc(Read read) noexcept -> decltype(read()) {
#if ADMIT_HAS_EXCEPTIONS
  try {
    return read();
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
#else
  return read();
#endif
}

}  // namespace detail

// --- The public readers (declared, and documented, in environment.hpp) -------

[[nodiscard]] inline std::optional<MemoryFacts> read_memory_facts(
    const std::filesystem::path& root) noexcept {
#if defined(__linux__)
  return detail::nullopt_on_bad_alloc([&] { return detail::memory_facts_at(root); });
#else
  static_cast<void>(root);
  return std::nullopt;
#endif
}

[[nodiscard]] inline std::optional<double> read_memory_pressure(
    const std::filesystem::path& root) noexcept {
#if defined(__linux__)
  return detail::nullopt_on_bad_alloc([&] { return detail::memory_pressure_at(root); });
#else
  static_cast<void>(root);
  return std::nullopt;
#endif
}

}  // namespace admit
