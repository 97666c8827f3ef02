// storage_test_support.hpp - what the storage tests share: scratch
// directories, small filesystems of their own, and one-call uploads.
#pragma once

#include <sched.h>  // unshare
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "catch.hpp"
#include "sha256.hpp"
#include "storage.hpp"

namespace storage_test {

namespace fs = std::filesystem;
using upload_server::prepare_storage;
using upload_server::Sha256;
using upload_server::StorageMode;
using upload_server::Stored;
using upload_server::UploadFile;

constexpr std::uint64_t MiB = 1024 * 1024;

// A fresh directory under `base`, removed with everything in it at scope exit.
class TempDir {
 public:
  explicit TempDir(const fs::path& base = fs::temp_directory_path()) {
    std::string pattern = (base / "upload_server_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error{errno, std::system_category()};
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

  [[nodiscard]] const fs::path& path() const { return path_; }

  /// Every entry's name, hidden ones included, sorted.
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator{path_}) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  [[nodiscard]] std::string read(const std::string& name) const {
    std::ifstream in{path_ / name, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  }

 private:
  fs::path path_;
};

// Puts this process in a mount namespace of its own, once: the tmpfs mounts
// of these tests then vanish with it, however it ends, and nobody else sees
// them. "" on success, else why not (not root).
inline const std::string& private_mounts() {
  static const std::string failure = []() -> std::string {
    if (::unshare(CLONE_NEWNS) != 0) return std::string{"unshare: "} + std::strerror(errno);
    // Else a mount here would still propagate to the parent namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return std::string{"making / private: "} + std::strerror(errno);
    }
    return {};
  }();
  return failure;
}

// A tmpfs of `size` bytes of its own, unmounted at scope exit; mounted() is
// false where mounting is not allowed (not root).
class SmallFs {
 public:
  explicit SmallFs(std::uint64_t size) {
    if (!(error_ = private_mounts()).empty()) return;
    const std::string options = "size=" + std::to_string(size);
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) ==
        0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  SmallFs(const SmallFs&) = delete;
  SmallFs& operator=(const SmallFs&) = delete;
  ~SmallFs() {
    if (mounted_)
      ::umount2(dir_.path().c_str(), MNT_DETACH);  // before TempDir removes the mount point
  }

  [[nodiscard]] bool mounted() const { return mounted_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const TempDir& dir() const { return dir_; }
  [[nodiscard]] const fs::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

#define SKIP_UNLESS_MOUNTED(small)                                             \
  do {                                                                         \
    if (!(small).mounted()) {                                                  \
      WARN("skipped: cannot mount a tmpfs (needs root): " << (small).error()); \
      return;                                                                  \
    }                                                                          \
  } while (false)

// Sets the storage mode for a scope, restoring the default after.
class ModeGuard {
 public:
  explicit ModeGuard(StorageMode mode) { upload_server::set_storage_mode(mode); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;
  ~ModeGuard() { upload_server::set_storage_mode({}); }
};

inline std::uint64_t free_bytes(const fs::path& dir) {
  struct statvfs filesystem {};
  REQUIRE(::statvfs(dir.c_str(), &filesystem) == 0);
  return std::uint64_t{filesystem.f_bavail} * filesystem.f_frsize;
}

// The bytes a file takes on disk (its blocks), not its size.
inline std::uint64_t allocated_bytes(const fs::path& file) {
  struct stat status {};
  REQUIRE(::stat(file.c_str(), &status) == 0);
  return std::uint64_t(status.st_blocks) * 512;
}

inline std::size_t open_descriptors() {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator{"/proc/self/fd"}, fs::directory_iterator{}));
}

inline std::string sha256_of(std::string_view data) {
  Sha256 sha;
  sha.update(data);
  return sha.hex_digest();
}

// Stores `data` as `name` in `dir` in one go; REQUIREs that every step works.
inline Stored store(const TempDir& dir, std::string_view name, std::string_view data) {
  UploadFile file;
  REQUIRE_FALSE(file.open(dir.path(), name));
  REQUIRE_FALSE(file.write(data));
  Stored stored;
  REQUIRE_FALSE(file.commit(stored));
  return stored;
}

// Whether partial uploads in `dir` are unnamed now (O_TMPFILE supported, not
// turned off).
inline bool unnamed_files_in(const TempDir& dir) {
  return prepare_storage(dir.path()).unnamed_files;
}

inline bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace storage_test
