// tests/fake_root.hpp - a directory laid out like / for the environment tests:
// /proc and /sys/fs/cgroup files written by the test, read by
// read_memory_facts(root) and MemoryWatch instead of the machine's.
#pragma once

#include <admit/environment.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include "catch.hpp"

namespace admit_test {

namespace fs = std::filesystem;
using admit::MemoryFacts;

/// A fresh directory laid out like / by the test, removed with everything in it.
class FakeRoot {
 public:
  FakeRoot() {
    std::random_device random;
    const fs::path base = fs::temp_directory_path();
    for (;;) {
      path_ = base / ("admit-fake-root-" + std::to_string(random()));
      if (fs::create_directory(path_)) break;
    }
  }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;
  ~FakeRoot() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

  [[nodiscard]] const fs::path& path() const { return path_; }

  /// Replaces `file` (relative to the root) with `text` in one step (written
  /// beside it, then renamed), so a reader on another thread sees the old
  /// contents or the new, never a half-written file.
  void write(std::string_view file, std::string_view text) const {
    const fs::path target = path_ / file;
    fs::create_directories(target.parent_path());
    fs::path temporary = target;
    temporary += ".new";
    {
      std::ofstream out{temporary, std::ios::binary};
      out << text;
      out.close();
      REQUIRE(out.good());
    }
    fs::rename(temporary, target);
  }

  void mkdir(std::string_view dir) const { fs::create_directories(path_ / dir); }

  [[nodiscard]] std::optional<MemoryFacts> read() const { return admit::read_memory_facts(path_); }

 private:
  fs::path path_;
};

}  // namespace admit_test
