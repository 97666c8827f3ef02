// storage.hpp - storing an upload so that the directory only ever shows
// complete files.
//
// An upload is written to a hidden temporary file (".<name>.<pid>.<n>.part")
// and becomes visible under its final name only when commit() has flushed it
// to disk, in one step that never replaces an existing file: link(2) fails
// rather than overwrite, so a second "report.zip" is stored as "report-1.zip".
// An upload that fails, is abandoned or whose UploadFile is destroyed leaves
// nothing behind. Client-supplied names pass through sanitize_file_name first,
// and since sanitized names never start with '.', no upload can collide with
// a temporary file.
//
// The write path reports failures as std::error_code (a full disk is an
// expected outcome for an upload server, not an exception); only allocation
// failure throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "sha256.hpp"

namespace upload_server {

/// The longest name sanitize_file_name returns.
inline constexpr std::size_t max_file_name_length = 128;

/// A name that is safe to create in the storage directory from whatever the
/// client sent: its base name only (after the last '/' or '\'), with every
/// character other than [A-Za-z0-9._-] and the visible non-ASCII letters and
/// signs (well-formed UTF-8 from U+00C0 on, without spaces, invisible or bidi
/// controls: "café.txt" stays) replaced by '_' (one '_' per UTF-8 character,
/// not per byte; one per byte of what is not UTF-8), without leading '.' or
/// '-' (no hidden files, no names a shell command would read as an option), at
/// most max_file_name_length bytes, cut between characters (the extension kept
/// if short), and "upload" if nothing is left.
[[nodiscard]] std::string sanitize_file_name(std::string_view client_name);

/// What commit() stored.
struct Stored {
  std::string name;  ///< the file's name in the directory; may differ from the one asked for
  std::uint64_t bytes = 0;
  std::string sha256;  ///< lowercase hex
};

/// One upload being written. Move-only; destroying it before a successful
/// commit() removes the temporary file.
class UploadFile {
 public:
  UploadFile() = default;
  UploadFile(UploadFile&& other) noexcept;
  UploadFile& operator=(UploadFile&& other) noexcept;
  UploadFile(const UploadFile&) = delete;
  UploadFile& operator=(const UploadFile&) = delete;
  ~UploadFile() { discard(); }

  /// Creates the temporary file in `dir` for an upload to be named
  /// `safe_name`, which must be its own sanitize_file_name (else
  /// errc::invalid_argument). Fails with errc::device_or_resource_busy if this
  /// object already holds an upload.
  [[nodiscard]] std::error_code open(const std::filesystem::path& dir, std::string_view safe_name);

  /// Appends `data`, retrying partial writes and EINTR. The first error sticks:
  /// every later write() and commit() returns it.
  [[nodiscard]] std::error_code write(std::string_view data);

  /// Bytes written so far.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

  /// Flushes the file to disk and makes it visible under its name, or the
  /// first free "<stem>-<n><extension>" if taken; fills `out`. Whatever the
  /// result, this object is empty afterwards: on failure nothing is left in
  /// the directory.
  [[nodiscard]] std::error_code commit(Stored& out);

  /// Abandons the upload and removes its temporary file. Does nothing if empty.
  void discard() noexcept;

 private:
  std::error_code fail(std::error_code error) noexcept;

  int fd_ = -1;
  std::filesystem::path dir_;
  std::string name_;
  std::filesystem::path temp_path_;  // empty when there is no temporary file
  std::optional<Sha256> sha256_;     // engaged while open
  std::uint64_t bytes_ = 0;
  std::error_code error_;  // the first write error
};

}  // namespace upload_server
