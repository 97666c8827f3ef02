// storage.cpp - file names, the storage directory's free space, and an
// upload from open to commit. The POSIX calls for partial files are in
// partial_file.cpp.
#include "storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <limits>
#include <new>
#include <random>
#include <utility>

#include "partial_file.hpp"

namespace upload_server {
namespace {

namespace fs = std::filesystem;
using detail::Descriptor;
using detail::Hold;
using detail::last_error;

// The candidates for a name: itself, "-1" ... "-9", then random suffixes. Nine
// numbers keep the common case readable ("report-2.zip"); past them a random
// suffix needs no probing of the names before it, so the 1001st upload of
// "upload.bin" costs what the 11th does. Sixteen 64-bit random suffixes all
// taken cannot happen short of a broken random source; commit() then reports
// file_exists rather than probe without end.
constexpr unsigned numbered_names = 9;
constexpr unsigned random_names = 16;
constexpr unsigned name_candidates = 1 + numbered_names + random_names;

// Extensions up to this long survive truncation ("...x.tar.gz" stays a .gz).
constexpr std::size_t max_kept_extension = 16;

// The storage mode (StorageMode), read on every open. Relaxed: a setting made
// before the first upload, ordered with nothing else.
std::atomic<bool> unnamed_files_on{true};
std::atomic<bool> preallocate_on{true};
std::atomic<bool> sync_commits_on{true};
std::atomic<HashThreads*> hash_threads_used{nullptr};

// Declared bytes of this process's open uploads that fallocate does not hold
// and that are not written yet: free space already promised, which
// check_free_space() subtracts. Per process, not per filesystem, so it is
// conservative for a process storing on several. Relaxed: an estimate read
// only by check_free_space() and ordered with nothing else (the server is one
// thread, where it is exact).
std::atomic<std::uint64_t> owed_bytes{0};

bool is_safe_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// "report.zip", "7" -> "report-7.zip": the extension stays last, so the file
// still opens with the right program. Appended piece by piece: GCC 12 at -O3
// reports a false -Wrestrict on the equivalent chain of operator+.
std::string with_suffix(const std::string& name, std::string_view suffix) {
  const std::size_t dot = name.rfind('.');
  const std::size_t stem_end = dot == std::string::npos ? name.size() : dot;
  std::string result = name.substr(0, stem_end);
  result += '-';
  result += suffix;
  result += std::string_view{name}.substr(stem_end);
  return result;
}

// 16 hex digits. Unpredictability is not what keeps uploads apart (link()
// never overwrites); it only makes a clash with another process's suffix
// unlikely, so a per-thread engine seeded once from the OS is enough.
std::string random_hex() {
  thread_local std::mt19937_64 engine{[] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) | device();
  }()};
  std::array<char, 16> digits{};
  std::uint64_t value = engine();
  for (char& digit : digits) {
    digit = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  }
  return {digits.data(), digits.size()};
}

// The n-th name to try for `name` (see name_candidates).
std::string candidate_name(const std::string& name, unsigned n) {
  if (n == 0) return name;
  if (n <= numbered_names) return with_suffix(name, std::to_string(n));
  return with_suffix(name, random_hex());
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

// The length of the well-formed UTF-8 character `s` starts with, and its code
// point; 0 if it starts with none (RFC 3629: shortest form, no surrogates, at
// most U+10FFFF), so that a kept character is one every tool reads alike.
std::size_t utf8_char(std::string_view s, char32_t& code_point) {
  const auto lead = static_cast<unsigned char>(s.front());
  std::size_t length = 0;
  char32_t smallest = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, code_point = lead & 0x1fU, smallest = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, code_point = lead & 0x0fU, smallest = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, code_point = lead & 0x07U, smallest = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if (!is_continuation(s[i])) return 0;
    code_point = (code_point << 6) | (static_cast<unsigned char>(s[i]) & 0x3fU);
  }
  const bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
  return code_point < smallest || code_point > 0x10ffff || surrogate ? 0 : length;
}

// The letters and signs of every script from U+00C0 on (so "café.txt" stays
// itself), but none that is invisible, a space, or reorders text: a name must
// show as what it is ("txt.exe" spelt backwards behind U+202E must not pass):
// Unicode's Default_Ignorable_Code_Point, White_Space and Bidi_Control
// characters are all excluded.
bool is_safe_code_point(char32_t c) {
  if (c < 0xc0) return false;                           // C1 controls, no-break space, soft hyphen
  if (c >= 0x2000 && c <= 0x206f) return false;         // spaces, zero-width and bidi controls
  if (c >= 0xe000 && c <= 0xf8ff) return false;         // private use
  if (c >= 0xfe00 && c <= 0xfe0f) return false;         // variation selectors
  if (c >= 0x180b && c <= 0x180f) return false;         // Mongolian ones, and vowel separator
  if (c >= 0x1bca0 && c <= 0x1bca3) return false;       // shorthand format controls
  if (c >= 0x1d173 && c <= 0x1d17a) return false;       // musical symbol format controls
  if (c >= 0xfff0) return c >= 0x10000 && c < 0xe0000;  // specials; tags and private planes
  switch (c) {
    case 0x034f:  // combining grapheme joiner
    case 0x061c:  // Arabic letter mark (bidi)
    case 0x115f:  // Hangul fillers
    case 0x1160:
    case 0x3164:
    case 0xffa0:
    case 0x1680:  // Ogham space mark
    case 0x17b4:  // Khmer inherent vowels, written as nothing
    case 0x17b5:
    case 0x3000:  // ideographic space
    case 0xfeff:  // zero-width no-break space (BOM)
      return false;
    default:
      return true;
  }
}

// The largest cut at or before `at` that does not split a character of `name`.
std::size_t char_boundary(const std::string& name, std::size_t at) {
  while (at > 0 && at < name.size() && is_continuation(name[at])) --at;
  return at;
}

}  // namespace

std::string sanitize_file_name(std::string_view client_name) {
  if (const std::size_t slash = client_name.find_last_of("/\\"); slash != std::string_view::npos) {
    client_name.remove_prefix(slash + 1);
  }
  std::string name;
  while (!client_name.empty()) {
    const char ch = client_name.front();
    char32_t code_point = 0;
    if (static_cast<unsigned char>(ch) < 0x80) {
      name += is_safe_char(static_cast<unsigned char>(ch)) ? ch : '_';
      client_name.remove_prefix(1);
    } else if (const std::size_t length = utf8_char(client_name, code_point); length != 0) {
      if (is_safe_code_point(code_point)) {
        name += client_name.substr(0, length);
      } else {
        name += '_';
      }
      client_name.remove_prefix(length);
    } else {
      // Not UTF-8: one '_' for the byte and the continuation bytes after it.
      name += '_';
      client_name.remove_prefix(1);
      for (int i = 0; i < 3 && !client_name.empty() && is_continuation(client_name.front()); ++i) {
        client_name.remove_prefix(1);
      }
    }
  }
  name.erase(0, name.find_first_not_of(".-"));
  if (name.size() > max_file_name_length) {
    const std::size_t dot = name.rfind('.');
    const std::size_t extension = dot == std::string::npos ? 0 : name.size() - dot;
    if (extension > 0 && extension <= max_kept_extension) {
      const std::size_t cut = char_boundary(name, max_file_name_length - extension);
      name.erase(cut, dot - cut);
    } else {
      name.resize(char_boundary(name, max_file_name_length));
    }
  }
  return name.empty() ? "upload" : name;
}

// --- The storage directory ---------------------------------------------------

void set_storage_mode(StorageMode mode) noexcept {
  unnamed_files_on.store(mode.unnamed_files, std::memory_order_relaxed);
  preallocate_on.store(mode.preallocate, std::memory_order_relaxed);
  sync_commits_on.store(mode.sync_commits, std::memory_order_relaxed);
  hash_threads_used.store(mode.hash_threads, std::memory_order_relaxed);
}

StorageMode storage_mode() noexcept {
  return {.unnamed_files = unnamed_files_on.load(std::memory_order_relaxed),
          .preallocate = preallocate_on.load(std::memory_order_relaxed),
          .sync_commits = sync_commits_on.load(std::memory_order_relaxed),
          .hash_threads = hash_threads_used.load(std::memory_order_relaxed)};
}

StorageReport prepare_storage(const fs::path& dir) {
  StorageReport report;
  const Descriptor dir_fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir_fd.get() < 0) {
    report.error = last_error();
    return report;
  }
  report.error = detail::sweep_partial_files(dir, dir_fd.get(), report.removed, report.kept);
  if (report.error) return report;

  // A probe file, made as an upload's would be, says what this filesystem
  // supports, and that the directory can be written into at all.
  {
    fs::path temp;
    const Descriptor probe{detail::create_partial_file(
        dir, "storage-probe", unnamed_files_on.load(std::memory_order_relaxed), temp,
        report.error)};
    if (probe.get() < 0) return report;
    report.unnamed_files = temp.empty();
    if (preallocate_on.load(std::memory_order_relaxed)) {
      std::error_code ignored;  // a full disk still supports fallocate
      report.preallocates = detail::hold_space(probe.get(), 1, ignored) != Hold::unsupported;
    }
    if (!temp.empty()) ::unlink(temp.c_str());
  }  // the probe's block is free again
  report.free_bytes = check_free_space(dir, 0).available;
  return report;
}

std::string describe(const StorageReport& report, const fs::path& dir) {
  std::string line = "storage in " + dir.string() + ": ";
  if (report.error) return line + "cannot be used: " + report.error.message();
  const StorageMode mode = storage_mode();
  line += report.unnamed_files ? "partial uploads are unnamed files (O_TMPFILE)"
          : mode.unnamed_files ? "partial uploads are hidden .part files (no O_TMPFILE here)"
                               : "partial uploads are hidden .part files (O_TMPFILE turned off)";
  line += report.preallocates ? ", space held with fallocate"
          : mode.preallocate  ? ", space counted, not held (no fallocate here)"
                              : ", space counted, not held (fallocate turned off)";
  line += ", " + std::to_string(report.free_bytes) + " bytes free; ";
  line += std::to_string(report.removed) + " stale partial files removed";
  if (report.kept > 0) {
    line += ", " + std::to_string(report.kept) + " kept (in use by a running process)";
  }
  return line;
}

// --- Free space --------------------------------------------------------------

SpaceCheck check_free_space(const fs::path& dir, std::uint64_t declared) noexcept {
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  SpaceCheck check;
  const std::uint64_t margin = space_margin(declared);
  check.needed = declared > max - margin ? max : declared + margin;  // 2^64-1 declared: no wrap
  struct statvfs filesystem {};
  if (::statvfs(dir.c_str(), &filesystem) != 0) {
    check.error = last_error();
    return check;
  }
  if (filesystem.f_blocks == 0) {  // no size reported: nothing to check against
    check.available = max;
    return check;
  }
  // f_bavail, not f_bfree: the blocks reserved for root are not the
  // server's to fill, even when it runs as root.
  const std::uint64_t unit = filesystem.f_frsize != 0 ? filesystem.f_frsize : filesystem.f_bsize;
  const std::uint64_t blocks = filesystem.f_bavail;
  const std::uint64_t free = unit != 0 && blocks > max / unit ? max : blocks * unit;
  const std::uint64_t owed = owed_bytes.load(std::memory_order_relaxed);
  check.available = free > owed ? free - owed : 0;
  if (check.needed > check.available) {
    check.error = std::make_error_code(std::errc::no_space_on_device);
  }
  return check;
}

std::string describe(const SpaceCheck& check) {
  if (check.error && check.error != std::errc::no_space_on_device) {
    return "cannot check the free space: " + check.error.message();
  }
  std::string text = "the upload needs ";
  text += std::to_string(check.needed);
  text += " bytes with the margin, the disk has ";
  text += std::to_string(check.available);
  text += " free";
  return text;
}

bool is_out_of_space(std::error_code error) noexcept {
  if (error == std::errc::no_space_on_device || error == std::errc::file_too_large) return true;
#if defined(EDQUOT)
  // std::errc has no EDQUOT, hence no portable condition to compare with.
  const bool errno_value =
      error.category() == std::system_category() || error.category() == std::generic_category();
  if (errno_value && error.value() == EDQUOT) return true;
#endif
  return false;
}

// --- One upload --------------------------------------------------------------

UploadFile& UploadFile::operator=(UploadFile&& other) noexcept {
  if (this != &other) {
    discard();
    state_ = std::exchange(other.state_, {});
  }
  return *this;
}

std::error_code UploadFile::open(const fs::path& dir, std::string_view safe_name,
                                 std::uint64_t declared_size) {
  if (is_open()) return std::make_error_code(std::errc::device_or_resource_busy);
  if (safe_name.empty() || sanitize_file_name(safe_name) != safe_name) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  // Before anything is created: a refusal costs one statvfs.
  if (const SpaceCheck space = check_free_space(dir, declared_size); space.error) {
    return space.error;
  }
  if (const std::error_code error = create(dir, safe_name)) return error;
  if (const std::error_code error = hold(declared_size)) return fail(error);
  return {};
}

std::error_code UploadFile::open(const fs::path& dir, std::string_view safe_name) {
  if (is_open()) return std::make_error_code(std::errc::device_or_resource_busy);
  if (safe_name.empty() || sanitize_file_name(safe_name) != safe_name) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  return create(dir, safe_name);
}

std::error_code UploadFile::create(const fs::path& dir, std::string_view safe_name) {
  State state;
  // Before the file exists, so that a bad_alloc leaves none behind.
  state.sha256.emplace(hash_threads_used.load(std::memory_order_relaxed));
  state.dir = dir;
  state.name = safe_name;
  std::error_code error;
  state.fd = detail::create_partial_file(
      dir, safe_name, unnamed_files_on.load(std::memory_order_relaxed), state.temp_path, error);
  if (state.fd < 0) return error;
  state_ = std::move(state);  // from here on, discard() cleans up whatever happens
  if ((error = plan_name())) return fail(error);
  return {};
}

std::error_code UploadFile::hold(std::uint64_t declared) noexcept {
  if (declared == 0) return {};  // fallocate refuses a length of 0, and there is nothing to hold
  if (preallocate_on.load(std::memory_order_relaxed)) {
    std::error_code error;
    switch (detail::hold_space(state_.fd, declared, error)) {
      case Hold::held:
        state_.held = declared;
        return {};
      case Hold::failed:
        return error;
      case Hold::unsupported:
        break;
    }
  }
  // Not held: owed, so that later checks do not promise the same free space.
  state_.owed = declared;
  owed_bytes.fetch_add(declared, std::memory_order_relaxed);
  return {};
}

std::error_code UploadFile::plan_name() {
  for (unsigned n = 0; n < name_candidates; ++n) {
    std::string candidate = candidate_name(state_.name, n);
    const fs::path path = state_.dir / candidate;
    struct stat status {};
    // lstat: a symlink takes its name too, since link() never follows one.
    if (::lstat(path.c_str(), &status) == 0) continue;
    // ENAMETOOLONG (a filesystem with a short NAME_MAX), EACCES: the link
    // would fail the same way after the whole body, so fail now.
    if (errno != ENOENT) return last_error();
    state_.planned = std::move(candidate);
    state_.candidate = n;
    return {};
  }
  return std::make_error_code(std::errc::file_exists);
}

void UploadFile::settle_owed(std::uint64_t written) noexcept {
  const std::uint64_t settled = std::min(state_.owed, written);
  if (settled == 0) return;
  state_.owed -= settled;
  owed_bytes.fetch_sub(settled, std::memory_order_relaxed);
}

std::error_code UploadFile::write(std::string_view data) {
  if (!is_open()) return std::make_error_code(std::errc::bad_file_descriptor);
  if (state_.error) return state_.error;
  const char* next = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t written = ::write(state_.fd, next, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {  // 0 cannot happen for a regular file; never spin on it
      state_.error = written < 0 ? last_error() : std::make_error_code(std::errc::io_error);
      return state_.error;
    }
    next += written;
    left -= static_cast<std::size_t>(written);
  }
  try {
    state_.sha256->update(data);
  } catch (const std::bad_alloc&) {  // its buffers: the upload cannot be hashed
    state_.error = std::make_error_code(std::errc::not_enough_memory);
    return state_.error;
  }
  state_.bytes += data.size();
  settle_owed(data.size());  // written bytes are on the disk, no longer owed
  return {};
}

std::error_code UploadFile::release_unwritten() {
  if (!is_open()) return std::make_error_code(std::errc::bad_file_descriptor);
  // Blocks held past the end of the file stay allocated after close
  // (FALLOC_FL_KEEP_SIZE): a multipart body declares more than its files, and
  // a client declaring 1 GiB for a 1-byte file must not cost 1 GiB of disk
  // for good. ftruncate to the size frees them; ext4 and tmpfs do so even
  // when the size does not change.
  if (state_.held > state_.bytes) {
    if (::ftruncate(state_.fd, static_cast<off_t>(state_.bytes)) != 0) return last_error();
    state_.held = state_.bytes;
  }
  settle_owed(state_.owed);
  return {};
}

std::error_code UploadFile::commit(Stored& out) {
  if (!is_open()) return std::make_error_code(std::errc::bad_file_descriptor);
  if (state_.error) return fail(state_.error);
  if (const std::error_code error = release_unwritten()) return fail(error);
  // Data first, then the name: after a crash the name never points at a file
  // whose bytes did not reach the disk. Without sync_commits the kernel's
  // writeback orders them, and a crash may leave a name on a short file.
  const bool sync = storage_mode().sync_commits;
  if (sync && ::fsync(state_.fd) != 0) return fail(last_error());
  Stored stored{
      .name = state_.planned, .bytes = state_.bytes, .sha256 = state_.sha256->hex_digest()};

  const Descriptor dir{::open(state_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.get() < 0) return fail(last_error());
  std::error_code error = link_first_free(dir.get(), stored.name);
  if (!error) {
    if (!state_.temp_path.empty()) {
      ::unlink(state_.temp_path.c_str());  // the upload now lives under its final name
      state_.temp_path.clear();
    }
    // Only a synced directory keeps the new name across a crash, and close()
    // can report a deferred write error (NFS). If either fails, take the name
    // back: an error must mean nothing was stored.
    if (sync && ::fsync(dir.get()) != 0) {
      error = last_error();
    } else if (::close(std::exchange(state_.fd, -1)) != 0) {
      error = last_error();
    }
    if (error) ::unlinkat(dir.get(), stored.name.c_str(), 0);
  }
  if (error) return fail(error);
  discard();  // resets the (now closed) object
  out = std::move(stored);
  return {};
}

std::error_code UploadFile::link_first_free(int dir_fd, std::string& name) {
  for (unsigned n = state_.candidate; n < name_candidates; ++n) {
    if (n != state_.candidate) name = candidate_name(state_.name, n);
    if (detail::link_partial_file(state_.fd, state_.temp_path, dir_fd, name) == 0) return {};
    if (errno != EEXIST) return last_error();  // EEXIST: taken, link never replaces: next one
  }
  return std::make_error_code(std::errc::file_exists);
}

void UploadFile::discard() noexcept {
  if (state_.fd >= 0) ::close(state_.fd);
  if (!state_.temp_path.empty()) ::unlink(state_.temp_path.c_str());
  settle_owed(state_.owed);  // what was never written is no longer owed
  state_ = State{};
}

std::error_code UploadFile::fail(std::error_code error) noexcept {
  discard();
  return error;
}

}  // namespace upload_server
