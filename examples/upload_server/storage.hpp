// storage.hpp - storing an upload so that the directory only ever shows
// complete files, no partial file outlives the process, names never run out
// and an upload that cannot fit on the disk is refused before its body.
//
// Partial files. Where the filesystem allows it (Linux O_TMPFILE: ext2/3/4,
// xfs, btrfs, tmpfs, ...), an upload is written to an unnamed file in the
// storage directory: it has no name until commit() links it in, so the kernel
// frees it with its last descriptor however the process ends, SIGKILL
// included. Elsewhere (NFS, most FUSE filesystems, overlayfs before Linux 6.6,
// or set_storage_mode({.unnamed_files = false})) it is a hidden file
// ".<name>.<pid>.<n>.part" on which the process holds an flock(2) lock while
// it writes; prepare_storage() at startup removes the ones nobody holds (left
// by a crash) and says how many. Client names pass through sanitize_file_name,
// whose results never start with '.', so no upload is named like a partial
// file, and none can be swept.
//
// Names. commit() makes the upload visible in one step that never replaces an
// existing file: link(2) fails with EEXIST rather than overwrite, and the next
// candidate is tried: "report.zip", "report-1.zip" ... "report-9.zip", then
// "report-<16 random hex digits>.zip", so a name never runs out. open()
// already looks for the first candidate free at that time (planned_name()),
// so that commit() usually links at the first try and a name the filesystem
// cannot take (too long for it, say) fails before the body is read; another
// upload may still take it first, which commit()'s EEXIST loop settles.
//
// Space. open() given the declared size refuses, with errc::no_space_on_device
// and before any byte is written, an upload that does not fit in the free
// space of the directory's filesystem with a margin (space_margin()), then
// holds the space with fallocate(2), so that concurrent uploads cannot all be
// admitted onto the same free space and the disk cannot fill under a running
// upload. Where fallocate is not supported (ext2/3 without extents, some NFS
// servers), the declared bytes not yet written are counted in this process
// instead and subtracted from the free space of later checks. commit() gives
// back what was held beyond the bytes written (a multipart body declares more
// than its file). is_out_of_space() tells these refusals, and a disk that
// fills anyway, from other failures.
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
#include <utility>

#include "hash_threads.hpp"

namespace upload_server {

/// The longest name sanitize_file_name returns. A name that commit() had to
/// make unique is up to 17 characters longer ("-" and 16 hex digits), well
/// within the 255 bytes of NAME_MAX.
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

// --- The storage directory ---------------------------------------------------

/// What storage may use where the filesystem supports it. All are on by
/// default; turning one off forces its fallback, for tests of the fallbacks
/// and for a filesystem whose O_TMPFILE or fallocate misbehaves. Process-wide;
/// set it before the first upload.
struct StorageMode {
  bool unnamed_files = true;  ///< O_TMPFILE; off: hidden ".part" files
  bool preallocate = true;    ///< fallocate(2); off: the space is counted, not held
  /// fsync(2) of the file and the directory at commit; off (--fsync off):
  /// a committed upload is complete for every reader, but only the kernel's
  /// writeback takes it to the disk, so a power loss may still lose it.
  bool sync_commits = true;
  /// Where an upload's SHA-256 is computed: on these threads (past the first
  /// StreamingSha256::inline_bytes), or with nullptr on the thread that
  /// writes it. They must outlive every UploadFile opened meanwhile.
  HashThreads* hash_threads = nullptr;
};
void set_storage_mode(StorageMode mode) noexcept;
[[nodiscard]] StorageMode storage_mode() noexcept;

/// What prepare_storage() found in the storage directory.
struct StorageReport {
  std::error_code error;         ///< the directory cannot be listed or written into
  bool unnamed_files = false;    ///< partial uploads here are unnamed (O_TMPFILE)
  bool preallocates = false;     ///< fallocate holds an upload's space here
  std::size_t removed = 0;       ///< stale partial files removed
  std::size_t kept = 0;          ///< partial files left alone: a running process holds them
  std::uint64_t free_bytes = 0;  ///< free for an unprivileged process, at startup
};

/// For startup, before the first upload: removes the partial files a crashed
/// process left in `dir` (hidden ".part" files nobody holds locked; those of a
/// running server sharing the directory are kept) and finds out what the
/// filesystem supports. Does not throw for filesystem errors: they go to
/// `error`.
[[nodiscard]] StorageReport prepare_storage(const std::filesystem::path& dir);

/// The report as one log line, e.g. "storage in uploads: partial uploads are
/// unnamed files (O_TMPFILE), space held with fallocate, 20971520 bytes free;
/// 0 stale partial files removed".
[[nodiscard]] std::string describe(const StorageReport& report, const std::filesystem::path& dir);

// --- Free space --------------------------------------------------------------

/// The free space an upload of `declared` bytes must leave on the filesystem:
/// 1 MiB plus 1/128 (0.8 %) of the upload. It covers the filesystem's own
/// blocks for the file (ext2/3 indirect blocks take 0.1 % at 4 KiB blocks,
/// 0.4 % at 1 KiB; extents far less) and keeps an upload from taking the last
/// blocks that the server's log and everything else on the disk need.
[[nodiscard]] constexpr std::uint64_t space_margin(std::uint64_t declared) noexcept {
  return (std::uint64_t{1} << 20) + declared / 128;
}

/// The outcome of check_free_space().
struct SpaceCheck {
  /// Empty: it fits. errc::no_space_on_device: it does not. Anything else:
  /// statvfs(2) failed on the directory.
  std::error_code error;
  std::uint64_t needed = 0;     ///< declared + space_margin(declared), saturating
  std::uint64_t available = 0;  ///< free for an unprivileged process, less what this
                                ///< process's open uploads are owed (see the top of the file)
};

/// Whether an upload of `declared` bytes fits on the filesystem of `dir` now.
/// A snapshot: open(dir, name, declared) checks again and then holds the space.
/// On its own it is for when the file cannot be opened yet but the client
/// must be answered first (a multipart body's file name comes with the body).
/// A filesystem that reports no size at all (f_blocks 0, as some FUSE ones
/// do) is taken to have room.
[[nodiscard]] SpaceCheck check_free_space(const std::filesystem::path& dir,
                                          std::uint64_t declared) noexcept;

/// The check in words, for a log line, an HTTP 507's message and a WebSocket
/// close reason (under the 123 bytes a close frame allows, with room for a
/// prefix): "the upload needs 31048576 bytes with the margin, the disk has
/// 20971520 free", or what statvfs reported.
[[nodiscard]] std::string describe(const SpaceCheck& check);

/// Whether `error` means that the upload does not fit (ENOSPC, EDQUOT, or
/// EFBIG: larger than the filesystem or RLIMIT_FSIZE allows) rather than that
/// storage is broken: HTTP 507 Insufficient Storage rather than 500.
[[nodiscard]] bool is_out_of_space(std::error_code error) noexcept;

// --- One upload --------------------------------------------------------------

/// What commit() stored.
struct Stored {
  std::string name;  ///< the file's name in the directory; may differ from the one asked for
  std::uint64_t bytes = 0;
  std::string sha256;  ///< lowercase hex
};

/// One upload being written. Move-only; destroying it before a successful
/// commit() removes its partial file and gives back any space it held.
class UploadFile {
 public:
  UploadFile() = default;
  UploadFile(UploadFile&& other) noexcept : state_{std::exchange(other.state_, {})} {}
  UploadFile& operator=(UploadFile&& other) noexcept;
  UploadFile(const UploadFile&) = delete;
  UploadFile& operator=(const UploadFile&) = delete;
  ~UploadFile() { discard(); }

  /// Creates the partial file in `dir` for an upload of `declared_size` bytes
  /// to be named `safe_name`, which must be its own sanitize_file_name (else
  /// errc::invalid_argument). Refuses an upload that does not fit
  /// (check_free_space(): errc::no_space_on_device, before creating anything)
  /// and holds its space (fallocate's ENOSPC, EDQUOT or EFBIG are reported as
  /// such); is_out_of_space() is true of all of these. Fails with
  /// errc::device_or_resource_busy if this object already holds an upload.
  [[nodiscard]] std::error_code open(const std::filesystem::path& dir, std::string_view safe_name,
                                     std::uint64_t declared_size);

  /// The same for an upload of unknown size: no space check, nothing held.
  [[nodiscard]] std::error_code open(const std::filesystem::path& dir, std::string_view safe_name);

  /// Appends `data`, retrying partial writes and EINTR. The first error sticks:
  /// every later write() and commit() returns it.
  [[nodiscard]] std::error_code write(std::string_view data);

  /// Bytes written so far.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return state_.bytes; }
  [[nodiscard]] bool is_open() const noexcept { return state_.fd >= 0; }
  /// Whether the partial file has no name (O_TMPFILE), rather than a hidden one.
  [[nodiscard]] bool is_unnamed() const noexcept { return is_open() && state_.temp_path.empty(); }
  /// Bytes that fallocate holds for this upload (0 where unsupported).
  [[nodiscard]] std::uint64_t held_bytes() const noexcept { return state_.held; }
  /// The name commit() will try first: the first candidate that was free when
  /// open() looked ("" when not open). Another upload may take it first.
  [[nodiscard]] const std::string& planned_name() const noexcept { return state_.planned; }

  /// Gives back the space held or counted beyond the bytes written so far, for
  /// an upload that is known to be complete before it is committed: a
  /// multipart body's file part that ended while the body goes on (with
  /// later parts to store on the space the first was given). commit() does
  /// it too. Further writes are no longer covered by a hold.
  [[nodiscard]] std::error_code release_unwritten();

  /// Flushes the file to disk (unless storage_mode().sync_commits is off)
  /// and makes it visible under planned_name(), or
  /// the next free candidate if that was taken meanwhile; fills `out`.
  /// Whatever the result, this object is empty afterwards: on failure nothing
  /// is left in the directory.
  [[nodiscard]] std::error_code commit(Stored& out);

  /// Abandons the upload and removes its partial file. Does nothing if empty.
  void discard() noexcept;

 private:
  // Everything an open upload owns, so that a move is one exchange.
  struct State {
    int fd = -1;
    std::filesystem::path dir;
    std::string name;                       // the name asked for
    std::string planned;                    // the candidate commit() tries first
    unsigned candidate = 0;                 // its index in the sequence of candidates
    std::filesystem::path temp_path;        // the hidden file; empty when unnamed
    std::optional<StreamingSha256> sha256;  // engaged while open
    std::uint64_t bytes = 0;
    std::uint64_t held = 0;  // bytes fallocate holds
    std::uint64_t owed = 0;  // declared bytes neither held nor written yet (counted process-wide)
    std::error_code error;   // the first write error
  };

  [[nodiscard]] std::error_code create(const std::filesystem::path& dir,
                                       std::string_view safe_name);
  [[nodiscard]] std::error_code hold(std::uint64_t declared) noexcept;
  [[nodiscard]] std::error_code plan_name();
  [[nodiscard]] std::error_code link_first_free(int dir_fd, std::string& name);
  void settle_owed(std::uint64_t written) noexcept;
  std::error_code fail(std::error_code error) noexcept;

  State state_;
};

}  // namespace upload_server
