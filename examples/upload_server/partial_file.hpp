// partial_file.hpp - the POSIX layer under storage.hpp: the file an upload is
// written to before it has its name, the disk space held for it, and the
// sweep of what a crashed process left. Internal to storage.cpp (and its
// tests); the contracts are those described at the top of storage.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace upload_server::detail {

// Closes a descriptor at scope exit, so that no path (an exception from a
// string allocation included) leaks one.
class Descriptor {
 public:
  explicit Descriptor(int fd) noexcept : fd_{fd} {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor();
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

[[nodiscard]] std::error_code last_error() noexcept;

/// ".<name>.<pid>.<n>.part": what a hidden partial file is called.
[[nodiscard]] std::string temp_name(std::string_view name, std::uint64_t n);

/// Whether `name` is what temp_name() makes, by this process or an earlier
/// one: the sweep removes nothing else (a hidden file of the operator's stays).
[[nodiscard]] bool is_partial_file_name(std::string_view name);

/// Creates the file an upload of `name` is written to in `dir`: unnamed
/// (O_TMPFILE) if `unnamed` and the filesystem allows, else hidden and
/// flock'ed. Returns its descriptor, or -1 and `error`; `temp_path` is the
/// hidden file's path, empty when unnamed.
[[nodiscard]] int create_partial_file(const std::filesystem::path& dir, std::string_view name,
                                      bool unnamed, std::filesystem::path& temp_path,
                                      std::error_code& error);

/// Gives the partial file `fd` (hidden at `temp_path`, or unnamed when that is
/// empty) the name `name` in the directory `dir_fd`; never replaces an
/// existing entry (EEXIST). 0, or -1 and errno, as link(2).
[[nodiscard]] int link_partial_file(int fd, const std::filesystem::path& temp_path, int dir_fd,
                                    const std::string& name) noexcept;

enum class Hold { held, unsupported, failed };

/// Reserves `bytes` of disk for the file without changing its size.
[[nodiscard]] Hold hold_space(int fd, std::uint64_t bytes, std::error_code& error) noexcept;

/// Removes the hidden partial files in `dir` (open as `dir_fd`) that no
/// process holds locked, counting them in `removed`; those held go to `kept`.
[[nodiscard]] std::error_code sweep_partial_files(const std::filesystem::path& dir, int dir_fd,
                                                  std::size_t& removed, std::size_t& kept);

}  // namespace upload_server::detail
