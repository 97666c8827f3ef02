// Tests for admit/environment.hpp: read_memory_facts() on fake roots laid out
// like / (cgroup v2, v1, hybrid, containers, meminfo, broken files), on the
// real machine, and budget_for()'s arithmetic at the edges.
#include <admit/environment.hpp>
#include <admit/units.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#if defined(__linux__)
#include <sys/stat.h>  // mkfifo, to plant a FIFO where a cgroup file should be
#endif

#include "catch.hpp"
#include "fake_root.hpp"

using admit::BudgetRule;
using admit::GiB;
using admit::KiB;
using admit::MemoryFacts;
using admit::MemorySource;
using admit::MiB;
using admit::PoolConfig;
using admit::TiB;

namespace fs = std::filesystem;
using admit_test::FakeRoot;

namespace Catch {
template <>
struct StringMaker<std::optional<MemoryFacts>> {
  static std::string convert(const std::optional<MemoryFacts>& facts) {
    if (!facts) return "nullopt";
    return "{limit " + std::to_string(facts->limit_bytes) + ", usage " +
           std::to_string(facts->usage_bytes) + ", " + std::string{to_string(facts->source)} + "}";
  }
};
}  // namespace Catch

namespace {

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

// The machine of every fake root that has a /proc/meminfo: 16 GiB, 12 GiB available.
constexpr std::uint64_t mem_total = 16 * GiB;
constexpr std::uint64_t mem_used = 4 * GiB;
constexpr std::string_view meminfo =
    "MemTotal:       16777216 kB\n"
    "MemFree:         8388608 kB\n"
    "MemAvailable:   12582912 kB\n"
    "Buffers:          524288 kB\n"
    "Cached:          2097152 kB\n"
    "HugePages_Total:       0\n";

constexpr std::string_view v1_no_limit = "9223372036854771712\n";

std::string bytes(std::uint64_t n) { return std::to_string(n) + "\n"; }

std::optional<MemoryFacts> facts(std::uint64_t limit, std::uint64_t usage, MemorySource source) {
  return MemoryFacts{.limit_bytes = limit, .usage_bytes = usage, .source = source};
}

}  // namespace

TEST_CASE("MemorySource names are the enumerators' names", "[environment]") {
  STATIC_REQUIRE(admit::to_string(MemorySource::cgroup_v2) == "cgroup_v2");
  STATIC_REQUIRE(admit::to_string(MemorySource::cgroup_v1) == "cgroup_v1");
  STATIC_REQUIRE(admit::to_string(MemorySource::meminfo) == "meminfo");
  // The default argument's std::filesystem::path is built by the caller, outside the call.
  STATIC_REQUIRE(noexcept(admit::read_memory_facts(std::declval<const fs::path&>())));
}

#if defined(__linux__)

TEST_CASE("cgroup v2: the process's memory.max and memory.current", "[environment][v2]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/a/b\n");
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/a/b/memory.max", bytes(2 * GiB));
  root.write("sys/fs/cgroup/a/b/memory.current", bytes(100 * MiB));
  CHECK(root.read() == facts(2 * GiB, 100 * MiB, MemorySource::cgroup_v2));

  SECTION("without a trailing newline") {
    root.write("sys/fs/cgroup/a/b/memory.max", "2147483648");
    root.write("sys/fs/cgroup/a/b/memory.current", "104857600");
    CHECK(root.read() == facts(2 * GiB, 100 * MiB, MemorySource::cgroup_v2));
  }
  SECTION("without /proc/meminfo") {
    fs::remove(root.path() / "proc/meminfo");
    CHECK(root.read() == facts(2 * GiB, 100 * MiB, MemorySource::cgroup_v2));
  }
}

TEST_CASE("cgroup v2: a tighter ancestor's limit binds, with that ancestor's usage",
          "[environment][v2]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/kubepods/pod/container\n");
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/kubepods/memory.max", "max\n");
  root.write("sys/fs/cgroup/kubepods/memory.current", bytes(3 * GiB));
  root.write("sys/fs/cgroup/kubepods/pod/memory.max", bytes(GiB));
  root.write("sys/fs/cgroup/kubepods/pod/memory.current", bytes(900 * MiB));
  root.write("sys/fs/cgroup/kubepods/pod/container/memory.max", "max\n");
  root.write("sys/fs/cgroup/kubepods/pod/container/memory.current", bytes(300 * MiB));
  CHECK(root.read() == facts(GiB, 900 * MiB, MemorySource::cgroup_v2));

  SECTION("the process's own limit binds when it is the tighter one") {
    root.write("sys/fs/cgroup/kubepods/pod/container/memory.max", bytes(512 * MiB));
    CHECK(root.read() == facts(512 * MiB, 300 * MiB, MemorySource::cgroup_v2));
  }
  SECTION("on a tie the ancestor's, whose usage includes the process's") {
    root.write("sys/fs/cgroup/kubepods/pod/container/memory.max", bytes(GiB));
    CHECK(root.read() == facts(GiB, 900 * MiB, MemorySource::cgroup_v2));
  }
  SECTION("an ancestor without a usage file leaves the process's own usage") {
    fs::remove(root.path() / "sys/fs/cgroup/kubepods/pod/memory.current");
    CHECK(root.read() == facts(GiB, 300 * MiB, MemorySource::cgroup_v2));
  }
}

TEST_CASE("cgroup v2: max on every level is no limit, and the cgroup's usage is kept",
          "[environment][v2]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/service\n");
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/service/memory.max", "max\n");
  root.write("sys/fs/cgroup/service/memory.current", bytes(200 * MiB));
  CHECK(root.read() == facts(mem_total, 200 * MiB, MemorySource::meminfo));

  SECTION("and without /proc/meminfo there is no limit to report") {
    fs::remove(root.path() / "proc/meminfo");
    CHECK(root.read() == std::nullopt);
  }
}

TEST_CASE("a cgroup limit above MemTotal is no limit; one equal to it binds",
          "[environment][v1][v2]") {
  FakeRoot root;
  root.write("proc/meminfo", meminfo);
  SECTION("v2") {
    root.write("proc/self/cgroup", "0::/big\n");
    root.write("sys/fs/cgroup/big/memory.max", bytes(mem_total + 1));
    root.write("sys/fs/cgroup/big/memory.current", bytes(64 * MiB));
    CHECK(root.read() == facts(mem_total, 64 * MiB, MemorySource::meminfo));
    root.write("sys/fs/cgroup/big/memory.max", bytes(mem_total));
    CHECK(root.read() == facts(mem_total, 64 * MiB, MemorySource::cgroup_v2));
    root.write("sys/fs/cgroup/big/memory.max", bytes(max_u64));  // parses, then is too big
    CHECK(root.read() == facts(mem_total, 64 * MiB, MemorySource::meminfo));
  }
  SECTION("v1") {
    root.write("proc/self/cgroup", "4:memory:/big\n");
    root.write("sys/fs/cgroup/memory/big/memory.limit_in_bytes", bytes(32 * GiB));
    root.write("sys/fs/cgroup/memory/big/memory.usage_in_bytes", bytes(64 * MiB));
    CHECK(root.read() == facts(mem_total, 64 * MiB, MemorySource::meminfo));
  }
}

TEST_CASE("cgroup v2 on a hybrid system lives under sys/fs/cgroup/unified",
          "[environment][v2][hybrid]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "1:name=systemd:/x\n0::/x\n");
  root.write("proc/meminfo", meminfo);
  root.mkdir("sys/fs/cgroup/systemd/x");
  root.write("sys/fs/cgroup/unified/x/memory.max", bytes(3 * GiB));
  root.write("sys/fs/cgroup/unified/x/memory.current", bytes(GiB));
  CHECK(root.read() == facts(3 * GiB, GiB, MemorySource::cgroup_v2));
}

TEST_CASE("cgroup v1: memory.limit_in_bytes and memory.usage_in_bytes", "[environment][v1]") {
  FakeRoot root;
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", bytes(GiB));
  root.write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", bytes(10 * MiB));
  SECTION("memory mounted alone") {
    root.write("proc/self/cgroup", "7:cpu:/elsewhere\n4:memory:/job\n");
    CHECK(root.read() == facts(GiB, 10 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("memory co-mounted with other controllers") {
    root.write("proc/self/cgroup", "4:cpu,memory,pids:/job\n");
    CHECK(root.read() == facts(GiB, 10 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("a controller whose name only contains memory is not it") {
    root.write("proc/self/cgroup", "4:nomemory,memoryx:/job\n");
    CHECK(root.read() == facts(mem_total, mem_used, MemorySource::meminfo));
  }
}

TEST_CASE("cgroup v1: hierarchical_memory_limit binds, with the usage of the level that has it",
          "[environment][v1]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "4:memory:/pod/container\n");
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", v1_no_limit);
  root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", bytes(5 * GiB));
  root.write("sys/fs/cgroup/memory/pod/memory.limit_in_bytes", bytes(GiB));
  root.write("sys/fs/cgroup/memory/pod/memory.usage_in_bytes", bytes(800 * MiB));
  root.write("sys/fs/cgroup/memory/pod/container/memory.limit_in_bytes", bytes(2 * GiB));
  root.write("sys/fs/cgroup/memory/pod/container/memory.usage_in_bytes", bytes(200 * MiB));
  const std::string stat = "cache 4096\nrss 8192\nhierarchical_memory_limit " +
                           std::to_string(GiB) + "\nhierarchical_memsw_limit 9223372036854771712\n";
  root.write("sys/fs/cgroup/memory/pod/container/memory.stat", stat);
  CHECK(root.read() == facts(GiB, 800 * MiB, MemorySource::cgroup_v1));

  SECTION("a limit set above the mount root, on no level we see, keeps the own usage") {
    root.write("sys/fs/cgroup/memory/pod/container/memory.stat",
               "hierarchical_memory_limit " + std::to_string(512 * MiB) + "\n");
    CHECK(root.read() == facts(512 * MiB, 200 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("the kernel's no-limit value there overrides the levels' files") {
    root.write("sys/fs/cgroup/memory/pod/container/memory.stat",
               "hierarchical_memory_limit 9223372036854771712\n");
    CHECK(root.read() == facts(mem_total, 200 * MiB, MemorySource::meminfo));
    fs::remove(root.path() / "proc/meminfo");  // no MemTotal to compare it with
    CHECK(root.read() == std::nullopt);
  }
  SECTION("without memory.stat, the tightest limit_in_bytes on the way up") {
    fs::remove(root.path() / "sys/fs/cgroup/memory/pod/container/memory.stat");
    CHECK(root.read() == facts(GiB, 800 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("a garbage hierarchical_memory_limit is as if absent") {
    root.write("sys/fs/cgroup/memory/pod/container/memory.stat",
               "hierarchical_memory_limit lots\n");
    CHECK(root.read() == facts(GiB, 800 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("a key that only starts like it is not it") {
    root.write("sys/fs/cgroup/memory/pod/container/memory.stat",
               "hierarchical_memory_limit_x 1\nhierarchical_memory_limit " +
                   std::to_string(512 * MiB) + "\n");
    CHECK(root.read() == facts(512 * MiB, 200 * MiB, MemorySource::cgroup_v1));
  }
}

TEST_CASE("cgroup v1: 9223372036854771712 is no limit", "[environment][v1]") {
  FakeRoot root;
  root.write("proc/self/cgroup", "4:memory:/job\n");
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", v1_no_limit);
  root.write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", bytes(10 * MiB));
  CHECK(root.read() == facts(mem_total, 10 * MiB, MemorySource::meminfo));

  SECTION("nor is the same value rounded to 64 KiB pages, even without meminfo") {
    root.write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", "9223372036854710272\n");
    CHECK(root.read() == facts(mem_total, 10 * MiB, MemorySource::meminfo));
    fs::remove(root.path() / "proc/meminfo");
    CHECK(root.read() == std::nullopt);
  }
}

TEST_CASE("hybrid: 0::/ and a v1 memory line use the hierarchy that has the memory files",
          "[environment][hybrid]") {
  // This machine's layout: v2 mounted at unified without the memory controller.
  FakeRoot root;
  root.write("proc/self/cgroup",
             "9:name=systemd:/\n4:memory:/process_api/028239ad3675\n1:cpu:/\n0::/\n");
  root.write("proc/meminfo", meminfo);
  root.mkdir("sys/fs/cgroup/cpu");
  root.write("sys/fs/cgroup/unified/cgroup.controllers", "\n");
  root.write("sys/fs/cgroup/unified/cpu.pressure", "some avg10=0.00\n");
  root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", v1_no_limit);
  const std::string job = "sys/fs/cgroup/memory/process_api/028239ad3675/";
  root.write(job + "memory.limit_in_bytes", bytes(6 * GiB));
  root.write(job + "memory.usage_in_bytes", bytes(3 * MiB));
  CHECK(root.read() == facts(6 * GiB, 3 * MiB, MemorySource::cgroup_v1));

  SECTION("with v2 memory files too, v2 is taken first") {
    root.write("sys/fs/cgroup/unified/memory.max", bytes(5 * GiB));
    root.write("sys/fs/cgroup/unified/memory.current", bytes(7 * MiB));
    CHECK(root.read() == facts(5 * GiB, 7 * MiB, MemorySource::cgroup_v2));
  }
}

TEST_CASE("a listed cgroup that is not under the mount falls back to the mount root",
          "[environment][container]") {
  FakeRoot root;
  root.write("proc/meminfo", meminfo);
  SECTION("v2") {
    root.write("proc/self/cgroup", "0::/kubepods/burstable/pod1/abc\n");
    root.write("sys/fs/cgroup/memory.max", bytes(GiB));
    root.write("sys/fs/cgroup/memory.current", bytes(50 * MiB));
    CHECK(root.read() == facts(GiB, 50 * MiB, MemorySource::cgroup_v2));
  }
  SECTION("v1") {
    root.write("proc/self/cgroup", "4:memory:/docker/abc\n");
    root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", bytes(GiB));
    root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", bytes(50 * MiB));
    CHECK(root.read() == facts(GiB, 50 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("v1 in a pod: the mount root's memory.stat has the pod's limit, set above it") {
    root.write("proc/self/cgroup", "4:memory:/kubepods/pod1/abc\n");
    root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", v1_no_limit);
    root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", bytes(50 * MiB));
    root.write("sys/fs/cgroup/memory/memory.stat",
               "cache 0\nhierarchical_memory_limit " + std::to_string(GiB) + "\n");
    CHECK(root.read() == facts(GiB, 50 * MiB, MemorySource::cgroup_v1));
  }
  SECTION("a listed path that exists only in part is not followed in part") {
    root.write("proc/self/cgroup", "0::/shared/abc\n");
    root.write("sys/fs/cgroup/memory.max", bytes(GiB));
    root.write("sys/fs/cgroup/memory.current", bytes(50 * MiB));
    root.write("sys/fs/cgroup/shared/memory.max", bytes(100 * MiB));  // someone else's
    CHECK(root.read() == facts(GiB, 50 * MiB, MemorySource::cgroup_v2));
  }
  SECTION("a path climbing out with .. (another cgroup namespace) is not followed") {
    root.write("proc/self/cgroup", "0::/../outside\n");
    root.write("sys/fs/outside/memory.max", bytes(100 * MiB));  // where ".." would lead
    root.write("sys/fs/cgroup/memory.max", bytes(GiB));
    root.write("sys/fs/cgroup/memory.current", bytes(50 * MiB));
    CHECK(root.read() == facts(GiB, 50 * MiB, MemorySource::cgroup_v2));
  }
}

TEST_CASE("/proc/meminfo alone: MemTotal, and MemTotal - MemAvailable in use",
          "[environment][meminfo]") {
  FakeRoot root;
  root.write("proc/meminfo", meminfo);
  CHECK(root.read() == facts(mem_total, mem_used, MemorySource::meminfo));

  SECTION("a /proc/self/cgroup naming no hierarchy with memory files changes nothing") {
    root.write("proc/self/cgroup", "0::/nowhere\n3:cpuset:/\n");
    CHECK(root.read() == facts(mem_total, mem_used, MemorySource::meminfo));
  }
  SECTION("without MemAvailable: MemTotal - MemFree - Buffers - Cached") {
    root.write("proc/meminfo",
               "MemTotal: 16777216 kB\nMemFree: 8388608 kB\nBuffers: 524288 kB\n"
               "Cached: 2097152 kB\n");
    CHECK(root.read() ==
          facts(mem_total, mem_total - 8 * GiB - 512 * MiB - 2 * GiB, MemorySource::meminfo));
  }
  SECTION("more available than total is no usage, not a wrapped one") {
    root.write("proc/meminfo", "MemTotal: 1024 kB\nMemAvailable: 4096 kB\n");
    CHECK(root.read() == facts(MiB, 0, MemorySource::meminfo));
    root.write("proc/meminfo",
               "MemTotal: 1024 kB\nMemFree: 18014398509481983 kB\n"
               "Buffers: 18014398509481983 kB\nCached: 18014398509481983 kB\n");
    CHECK(root.read() == facts(MiB, 0, MemorySource::meminfo));
  }
  SECTION("no MemAvailable and not all of the older figures: no usage, so nothing") {
    root.write("proc/meminfo", "MemTotal: 16777216 kB\nMemFree: 8388608 kB\n");
    CHECK(root.read() == std::nullopt);
  }
}

TEST_CASE("garbage in a cgroup file is not usable", "[environment][parsing]") {
  const std::string_view garbage[] = {
      "",      "\n",    "abc\n",  "-1\n",   "+5\n",  "12abc\n",
      " 12\n", "12 \n", "12\n\n", "0x10\n", "1e9\n", "18446744073709551616\n",
      "max\n"};  // "max" means no limit in a v2 memory.max, and nothing anywhere else
  const auto read_with = [](std::string_view cgroup_line, std::string_view dir,
                            std::string_view limit_file, std::string_view limit,
                            std::string_view usage_file, std::string_view usage) {
    FakeRoot root;
    root.write("proc/meminfo", meminfo);
    root.write("proc/self/cgroup", cgroup_line);
    root.write(std::string{dir} + std::string{limit_file}, limit);
    root.write(std::string{dir} + std::string{usage_file}, usage);
    return root.read();
  };
  const std::string good_limit = bytes(GiB);
  const std::string good_usage = bytes(MiB);
  for (const std::string_view text : garbage) {
    CAPTURE(text);
    // v2: an unusable limit is no limit on that level; an unusable usage is an unknown one,
    // and the usage comes from meminfo.
    CHECK(read_with("0::/job\n", "sys/fs/cgroup/job/", "memory.max", text, "memory.current",
                    good_usage) == facts(mem_total, MiB, MemorySource::meminfo));
    CHECK(read_with("0::/job\n", "sys/fs/cgroup/job/", "memory.max", good_limit, "memory.current",
                    text) == facts(GiB, mem_used, MemorySource::cgroup_v2));
    // v1: the same.
    CHECK(read_with("4:memory:/job\n", "sys/fs/cgroup/memory/job/", "memory.limit_in_bytes", text,
                    "memory.usage_in_bytes",
                    good_usage) == facts(mem_total, MiB, MemorySource::meminfo));
    CHECK(read_with("4:memory:/job\n", "sys/fs/cgroup/memory/job/", "memory.limit_in_bytes",
                    good_limit, "memory.usage_in_bytes",
                    text) == facts(GiB, mem_used, MemorySource::cgroup_v1));
  }
  // The largest std::uint64_t is still a number (and, as a limit, far above MemTotal).
  CHECK(read_with("0::/job\n", "sys/fs/cgroup/job/", "memory.max", "18446744073709551615\n",
                  "memory.current",
                  "18446744073709551615\n") == facts(mem_total, max_u64, MemorySource::meminfo));
}

TEST_CASE("a malformed /proc/meminfo or /proc/self/cgroup is not usable",
          "[environment][parsing]") {
  FakeRoot root;
  for (const std::string_view text :
       {"", "MemTotal: abc kB\n", "MemTotal: 1024\n", "MemTotal: 1024 MB\n", "MemTotal:\n",
        "MemTotal: 0 kB\nMemAvailable: 0 kB\n", "MemTotalx: 1024 kB\nMemAvailable: 0 kB\n",
        "MemTotal: 18014398509481984 kB\nMemAvailable: 0 kB\n"}) {
    CAPTURE(text);
    root.write("proc/meminfo", text);
    CHECK(root.read() == std::nullopt);
  }
  root.write("proc/meminfo", meminfo);
  root.write("sys/fs/cgroup/job/memory.max", bytes(GiB));
  root.write("sys/fs/cgroup/job/memory.current", bytes(MiB));
  for (const std::string_view text : {"", "garbage\n", "0:/job\n", "0::job\n", "1::/job\n"}) {
    CAPTURE(text);
    root.write("proc/self/cgroup", text);
    CHECK(root.read() == facts(mem_total, mem_used, MemorySource::meminfo));
  }
  root.write("proc/self/cgroup", "0::/job\n");
  CHECK(root.read() == facts(GiB, MiB, MemorySource::cgroup_v2));
}

TEST_CASE("missing files: a limit needs some usage, and nothing at all is nullopt",
          "[environment]") {
  FakeRoot root;
  CHECK(root.read() == std::nullopt);
  CHECK(admit::read_memory_facts(root.path() / "does-not-exist") == std::nullopt);

  root.write("proc/self/cgroup", "0::/job\n");
  root.write("sys/fs/cgroup/job/memory.max", bytes(GiB));
  CHECK(root.read() == std::nullopt);  // a limit, but no usage anywhere
  root.write("proc/meminfo", meminfo);
  CHECK(root.read() == facts(GiB, mem_used, MemorySource::cgroup_v2));
  fs::remove(root.path() / "sys/fs/cgroup/job/memory.max");
  CHECK(root.read() == facts(mem_total, mem_used, MemorySource::meminfo));
}

TEST_CASE("only small regular files are read: not a FIFO, a directory or a huge file",
          "[environment][parsing]") {
  FakeRoot root;
  root.write("proc/meminfo", meminfo);
  root.write("proc/self/cgroup", "0::/job\n");
  root.write("sys/fs/cgroup/job/memory.current", bytes(MiB));
  // Opening a FIFO for reading blocks until a writer comes: this test would hang.
  REQUIRE(::mkfifo((root.path() / "sys/fs/cgroup/job/memory.max").c_str(), 0600) == 0);
  CHECK(root.read() == facts(mem_total, MiB, MemorySource::meminfo));

  fs::remove(root.path() / "sys/fs/cgroup/job/memory.max");
  root.mkdir("sys/fs/cgroup/job/memory.max");
  CHECK(root.read() == facts(mem_total, MiB, MemorySource::meminfo));

  // Real meminfo figures, padded past 64 KiB: refused whole, not read in part.
  root.write("proc/meminfo", std::string{meminfo} + std::string(64 * KiB, '\n'));
  CHECK(root.read() == std::nullopt);
  root.write("proc/meminfo", std::string{meminfo} + std::string(32 * KiB, '\n'));
  CHECK(root.read() == facts(mem_total, MiB, MemorySource::meminfo));
}

TEST_CASE("the real machine's memory facts are readable", "[environment][real]") {
  const std::optional<MemoryFacts> real = admit::read_memory_facts();
  REQUIRE(real.has_value());
  WARN("this machine: source " << admit::to_string(real->source) << ", limit " << real->limit_bytes
                               << " bytes, usage " << real->usage_bytes << " bytes");
  CHECK(real->limit_bytes > 0);
  CHECK(real->usage_bytes > 0);
}

#else

TEST_CASE("outside Linux nothing is found", "[environment]") {
  CHECK(admit::read_memory_facts() == std::nullopt);
}

#endif

TEST_CASE("budget_for takes percent of what the reserve leaves, rounded down",
          "[environment][budget]") {
  constexpr auto budget = [](std::uint64_t limit, BudgetRule rule) {
    return admit::budget_for(
        {.limit_bytes = limit, .usage_bytes = 0, .source = MemorySource::meminfo}, rule);
  };
  STATIC_REQUIRE(budget(1000, {}) == 900);  // the default rule: 90 %, no reserve
  STATIC_REQUIRE(budget(1000, {.percent = 50, .reserve_bytes = 200}) == 400);
  STATIC_REQUIRE(budget(199, {.percent = 50}) == 99);
  STATIC_REQUIRE(budget(101, {.percent = 99}) == 99);
  STATIC_REQUIRE(budget(1'000'000'000'099, {.percent = 37}) == 370'000'000'036);
  STATIC_REQUIRE(budget(2 * GiB, {.percent = 80, .reserve_bytes = 512 * MiB}) == 1'288'490'188);
  CHECK(budget(GiB, {.percent = 0}) == 0);
  CHECK(budget(GiB, {.percent = 100}) == GiB);
  CHECK(budget(GiB, {.percent = 101}) == GiB);
  CHECK(budget(GiB, {.percent = 250, .reserve_bytes = MiB}) == GiB - MiB);
  CHECK(budget(GiB, {.percent = std::numeric_limits<unsigned>::max()}) == GiB);
  // Usage plays no part: the budget is a share of the limit, not of what is free.
  CHECK(admit::budget_for(
            {.limit_bytes = GiB, .usage_bytes = 2 * GiB, .source = MemorySource::cgroup_v1},
            {.percent = 100}) == GiB);
}

TEST_CASE("budget_for is 0 when the reserve takes the whole limit", "[environment][budget]") {
  constexpr auto budget = [](std::uint64_t limit, BudgetRule rule) {
    return admit::budget_for(
        {.limit_bytes = limit, .usage_bytes = 0, .source = MemorySource::cgroup_v2}, rule);
  };
  CHECK(budget(GiB, {.percent = 100, .reserve_bytes = GiB}) == 0);
  CHECK(budget(GiB, {.percent = 100, .reserve_bytes = GiB + 1}) == 0);
  CHECK(budget(GiB, {.percent = 100, .reserve_bytes = max_u64}) == 0);
  CHECK(budget(GiB, {.percent = 100, .reserve_bytes = GiB - 1}) == 1);
  CHECK(budget(0, {}) == 0);
}

TEST_CASE("budget_for saturates to max_memory_budget and never overflows",
          "[environment][budget]") {
  constexpr auto budget = [](std::uint64_t limit, BudgetRule rule) {
    return admit::budget_for(
        {.limit_bytes = limit, .usage_bytes = 0, .source = MemorySource::meminfo}, rule);
  };
  constexpr std::uint64_t max_budget = PoolConfig::max_memory_budget;
  CHECK(budget(16 * TiB, {}) == max_budget);
  CHECK(budget(max_budget, {.percent = 100}) == max_budget);
  CHECK(budget(max_budget + 1, {.percent = 100}) == max_budget);
  CHECK(budget(max_budget, {.percent = 99}) == 8'708'132'091'984);  // exact below the cap
  CHECK(budget(max_u64, {.percent = 100}) == max_budget);
  CHECK(budget(max_u64, {.percent = 1}) == max_budget);
  // limit * percent computed in 64 bits wraps to 0 for these: the budget would be 0.
  CHECK(budget(std::uint64_t{1} << 63, {.percent = 50}) == max_budget);
  CHECK(budget(std::uint64_t{1} << 62, {.percent = 100}) == max_budget);
  // Just under the cap once the reserve is off a limit near 2^64: exact, not saturated.
  CHECK(budget(max_u64, {.percent = 50, .reserve_bytes = max_u64 - 2 * TiB}) == TiB);
}
