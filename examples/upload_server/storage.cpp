// storage.cpp - file names, and the POSIX calls that create, fill and publish
// an upload.
#include "storage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

namespace upload_server {
namespace {

// Enough for a busy directory of "report.zip"s; past it, commit() reports
// file_exists rather than probing forever.
constexpr unsigned max_name_attempts = 1000;

// Extensions up to this long survive truncation ("...x.tar.gz" stays a .gz).
constexpr std::size_t max_kept_extension = 16;

bool is_safe_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

// "report.zip", 2 -> "report-2.zip": the extension stays last, so the file still
// opens with the right program.
std::string numbered(const std::string& name, unsigned n) {
  const std::size_t dot = name.rfind('.');
  const std::size_t stem_end = dot == std::string::npos ? name.size() : dot;
  return name.substr(0, stem_end) + "-" + std::to_string(n) + name.substr(stem_end);
}

// ".<name>.<pid>.<n>.part". Appended piece by piece: GCC 12 at -O3 reports a
// false -Wrestrict on the equivalent chain of operator+.
std::string temp_name(std::string_view name, std::uint64_t n) {
  std::string temp{"."};
  temp += name;
  temp += '.';
  temp += std::to_string(::getpid());
  temp += '.';
  temp += std::to_string(n);
  temp += ".part";
  return temp;
}

// A new directory entry is durable only once the directory itself is synced.
std::error_code sync_directory(const std::filesystem::path& dir) noexcept {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error();
  std::error_code error;
  if (::fsync(fd) != 0) error = last_error();
  ::close(fd);
  return error;
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
// show as what it is ("txt.exe" spelt backwards behind U+202E must not pass).
bool is_safe_code_point(char32_t c) {
  if (c < 0xc0) return false;                           // C1 controls, no-break space, soft hyphen
  if (c >= 0x2000 && c <= 0x206f) return false;         // spaces, zero-width and bidi controls
  if (c >= 0xe000 && c <= 0xf8ff) return false;         // private use
  if (c >= 0xfe00 && c <= 0xfe0f) return false;         // variation selectors
  if (c >= 0xfff0) return c >= 0x10000 && c < 0xe0000;  // specials; tags and private planes
  switch (c) {
    case 0x034f:  // combining grapheme joiner
    case 0x061c:  // Arabic letter mark (bidi)
    case 0x115f:  // Hangul fillers
    case 0x1160:
    case 0x3164:
    case 0xffa0:
    case 0x1680:  // Ogham space mark
    case 0x180e:  // Mongolian vowel separator
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

UploadFile::UploadFile(UploadFile&& other) noexcept
    : fd_{std::exchange(other.fd_, -1)},
      dir_{std::exchange(other.dir_, {})},
      name_{std::exchange(other.name_, {})},
      temp_path_{std::exchange(other.temp_path_, {})},
      sha256_{std::exchange(other.sha256_, std::nullopt)},
      bytes_{std::exchange(other.bytes_, 0)},
      error_{std::exchange(other.error_, {})} {}

UploadFile& UploadFile::operator=(UploadFile&& other) noexcept {
  if (this != &other) {
    discard();
    fd_ = std::exchange(other.fd_, -1);
    dir_ = std::exchange(other.dir_, {});
    name_ = std::exchange(other.name_, {});
    temp_path_ = std::exchange(other.temp_path_, {});
    sha256_ = std::exchange(other.sha256_, std::nullopt);
    bytes_ = std::exchange(other.bytes_, 0);
    error_ = std::exchange(other.error_, {});
  }
  return *this;
}

std::error_code UploadFile::open(const std::filesystem::path& dir, std::string_view safe_name) {
  if (is_open()) return std::make_error_code(std::errc::device_or_resource_busy);
  if (safe_name.empty() || sanitize_file_name(safe_name) != safe_name) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  sha256_.emplace();  // before the file exists, so that a bad_alloc leaves none behind
  // pid + a process-wide counter keeps names apart between threads and
  // processes; O_EXCL makes a clash (a stale file from a reused pid) an EEXIST
  // to step past, never a file shared with someone else.
  static std::atomic<std::uint64_t> counter{0};
  std::error_code error;
  for (unsigned attempt = 0; attempt < max_name_attempts; ++attempt) {
    std::filesystem::path temp =
        dir / temp_name(safe_name, counter.fetch_add(1, std::memory_order_relaxed));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      fd_ = fd;
      dir_ = dir;
      name_ = safe_name;
      temp_path_ = std::move(temp);
      bytes_ = 0;
      error_.clear();
      return {};
    }
    error = last_error();
    if (error != std::errc::file_exists) break;
  }
  sha256_.reset();
  return error;
}

std::error_code UploadFile::write(std::string_view data) {
  if (!is_open()) return std::make_error_code(std::errc::bad_file_descriptor);
  if (error_) return error_;
  const char* next = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t written = ::write(fd_, next, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {  // 0 cannot happen for a regular file; never spin on it
      error_ = written < 0 ? last_error() : std::make_error_code(std::errc::io_error);
      return error_;
    }
    next += written;
    left -= static_cast<std::size_t>(written);
  }
  sha256_->update(data);
  bytes_ += data.size();
  return {};
}

std::error_code UploadFile::commit(Stored& out) {
  if (!is_open()) return std::make_error_code(std::errc::bad_file_descriptor);
  if (error_) return fail(error_);
  // Data first, then the name: after a crash the name never points at a file
  // whose bytes did not reach the disk. close() can report a deferred write
  // error (NFS), so its result counts too.
  if (::fsync(fd_) != 0) return fail(last_error());
  if (::close(std::exchange(fd_, -1)) != 0) return fail(last_error());
  Stored stored{.name = name_, .bytes = bytes_, .sha256 = sha256_->hex_digest()};

  for (unsigned n = 0; n < max_name_attempts; ++n) {
    if (n > 0) stored.name = numbered(name_, n);
    const std::filesystem::path final_path = dir_ / stored.name;
    if (::link(temp_path_.c_str(), final_path.c_str()) != 0) {
      if (errno == EEXIST) continue;  // taken: link never replaces, try the next name
      return fail(last_error());
    }
    ::unlink(temp_path_.c_str());  // the upload now lives under its final name
    temp_path_.clear();
    // Only a synced directory keeps the new name across a crash. If that
    // fails, take the name back: an error must mean nothing was stored.
    if (const std::error_code error = sync_directory(dir_)) {
      ::unlink(final_path.c_str());
      return fail(error);
    }
    discard();  // resets the (now empty) object
    out = std::move(stored);
    return {};
  }
  return fail(std::make_error_code(std::errc::file_exists));
}

void UploadFile::discard() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
  sha256_.reset();
  bytes_ = 0;
  error_.clear();
}

std::error_code UploadFile::fail(std::error_code error) noexcept {
  discard();
  return error;
}

}  // namespace upload_server
