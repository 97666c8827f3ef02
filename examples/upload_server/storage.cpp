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

}  // namespace

std::string sanitize_file_name(std::string_view client_name) {
  if (const std::size_t slash = client_name.find_last_of("/\\"); slash != std::string_view::npos) {
    client_name.remove_prefix(slash + 1);
  }
  std::string name;
  bool after_non_ascii = false;
  for (const char ch : client_name) {
    const auto c = static_cast<unsigned char>(ch);
    const bool continuation = c >= 0x80 && c < 0xc0;  // UTF-8 10xxxxxx
    if (is_safe_char(c)) {
      name += ch;
    } else if (!(continuation && after_non_ascii)) {
      name += '_';
    }
    after_non_ascii = c >= 0x80;
  }
  name.erase(0, name.find_first_not_of(".-"));
  if (name.size() > max_file_name_length) {
    const std::size_t dot = name.rfind('.');
    const std::size_t extension = dot == std::string::npos ? 0 : name.size() - dot;
    if (extension > 0 && extension <= max_kept_extension) {
      name.erase(max_file_name_length - extension, name.size() - max_file_name_length);
    } else {
      name.resize(max_file_name_length);
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
