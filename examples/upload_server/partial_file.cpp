// partial_file.cpp - the POSIX calls that create, link and hold space for a
// partial upload, and sweep the ones a crash left behind.
#include "partial_file.hpp"

#include <dirent.h>
#include <fcntl.h>  // O_TMPFILE and fallocate (Linux, with _GNU_SOURCE, which g++ and clang++ define)
#include <sys/file.h>  // flock
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <limits>
#include <utility>

namespace upload_server::detail {
namespace {

namespace fs = std::filesystem;

// Hidden partial files whose name is taken (stale files of a reused pid) are
// stepped past; this bounds the steps.
constexpr unsigned max_temp_attempts = 1000;

constexpr std::string_view partial_suffix = ".part";

bool is_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Descriptor::~Descriptor() {
  if (fd_ >= 0) ::close(fd_);
}

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

// Hidden, so never an upload's name (sanitize_file_name strips a leading
// '.'). Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on
// the equivalent chain of operator+.
std::string temp_name(std::string_view name, std::uint64_t n) {
  std::string temp{"."};
  temp += name;
  temp += '.';
  temp += std::to_string(::getpid());
  temp += '.';
  temp += std::to_string(n);
  temp += partial_suffix;
  return temp;
}

bool is_partial_file_name(std::string_view name) {
  if (name.size() <= 1 + partial_suffix.size() || name[0] != '.' ||
      !name.ends_with(partial_suffix)) {
    return false;
  }
  name.remove_prefix(1);
  name.remove_suffix(partial_suffix.size());
  for (int field = 0; field < 2; ++field) {  // <n>, then <pid>
    const std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos || !is_digits(name.substr(dot + 1))) return false;
    name = name.substr(0, dot);
  }
  return !name.empty();
}

int create_partial_file(const fs::path& dir, std::string_view name, bool unnamed,
                        fs::path& temp_path, std::error_code& error) {
  temp_path.clear();
#if defined(O_TMPFILE)
  if (unnamed) {
    const int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    // EOPNOTSUPP: this filesystem has no unnamed files. EISDIR, EINVAL: a
    // kernel older than O_TMPFILE (3.11) read it as O_DIRECTORY, or refused
    // it. Anything else (no such directory, no permission, read-only, full)
    // is the answer for the hidden file too.
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      error = last_error();
      return -1;
    }
  }
#endif
  // pid + a process-wide counter keeps names apart between threads and
  // processes; O_EXCL makes a clash (a stale file of a reused pid) an EEXIST
  // to step past, never a file shared with someone else, and with O_NOFOLLOW
  // never a symlink's target.
  static std::atomic<std::uint64_t> counter{0};
  for (unsigned attempt = 0; attempt < max_temp_attempts; ++attempt) {
    fs::path temp = dir / temp_name(name, counter.fetch_add(1, std::memory_order_relaxed));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      error = last_error();
      return -1;
    }
    // The lock tells another process's prepare_storage() that the file is in
    // use; the kernel drops it when this process ends, however it ends.
    // EWOULDBLOCK: a sweep opened the file in the instant since it was made
    // and will remove it, so take another. A filesystem without locks
    // (ENOLCK): carry on unlocked; the sweep cannot tell then and keeps it.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
      ::close(fd);
      continue;
    }
    // A sweep that locked it first may also have removed it and let go:
    // writing on would fill a file that commit() can no longer link.
    struct stat status {};
    if (::fstat(fd, &status) == 0 && status.st_nlink == 0) {
      ::close(fd);
      continue;
    }
    temp_path = std::move(temp);
    return fd;
  }
  error = std::make_error_code(std::errc::file_exists);
  return -1;
}

// FALLOC_FL_KEEP_SIZE leaves the file's
// size at 0, so write() appends as it would without it. Not posix_fallocate:
// where the filesystem cannot preallocate, glibc emulates it by writing into
// every block, which takes as long as the upload and changes the file's
// size; "not supported" is the answer wanted there.
Hold hold_space(int fd, std::uint64_t bytes, std::error_code& error) noexcept {
#if defined(__linux__) && defined(FALLOC_FL_KEEP_SIZE)
  if (bytes > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
    error = std::make_error_code(std::errc::file_too_large);
    return Hold::failed;
  }
  int result = 0;
  do {
    result = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes));
  } while (result != 0 && errno == EINTR);
  if (result == 0) return Hold::held;
  if (errno == EOPNOTSUPP || errno == ENOSYS) return Hold::unsupported;
  error = last_error();  // ENOSPC, EDQUOT, EFBIG (past the filesystem's largest file), EIO
  return Hold::failed;
#else
  (void)fd;
  (void)bytes;
  (void)error;
  return Hold::unsupported;
#endif
}

std::error_code sweep_partial_files(const fs::path& dir, int dir_fd, std::size_t& removed,
                                    std::size_t& kept) {
  DIR* const listing = ::opendir(dir.c_str());
  if (listing == nullptr) return last_error();
  std::error_code error;
  for (;;) {
    errno = 0;
    const dirent* const entry = ::readdir(listing);
    if (entry == nullptr) {
      if (errno != 0) error = last_error();
      break;
    }
    if (!is_partial_file_name(entry->d_name)) continue;
    // O_NOFOLLOW: a symlink is not ours (ELOOP), whatever its name;
    // O_NONBLOCK: neither is a FIFO, and opening one must not block.
    const Descriptor file{
        ::openat(dir_fd, entry->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
    struct stat status {};
    if (file.get() < 0 || ::fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
      continue;
    }
    if (::flock(file.get(), LOCK_EX | LOCK_NB) != 0) {
      ++kept;  // a running process writes it (or the filesystem has no locks)
      continue;
    }
    if (::unlinkat(dir_fd, entry->d_name, 0) == 0) ++removed;
  }
  ::closedir(listing);
  return error;
}

int link_partial_file(int fd, const fs::path& temp_path, int dir_fd,
                      const std::string& name) noexcept {
  if (!temp_path.empty()) return ::linkat(AT_FDCWD, temp_path.c_str(), dir_fd, name.c_str(), 0);
#if defined(O_TMPFILE)
  // /proc/self/fd/N names the unnamed file, and AT_SYMLINK_FOLLOW links what
  // it points to: no privilege needed, only /proc. Without /proc (ENOENT),
  // AT_EMPTY_PATH links the descriptor itself, where the process may
  // (CAP_DAC_READ_SEARCH, or Linux 6.10+ for a file it opened).
  std::array<char, 32> proc{"/proc/self/fd/"};
  constexpr std::size_t prefix = std::string_view{"/proc/self/fd/"}.size();
  *std::to_chars(proc.data() + prefix, proc.data() + proc.size() - 1, fd).ptr = '\0';
  if (::linkat(AT_FDCWD, proc.data(), dir_fd, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  if (errno != ENOENT) return -1;
  return ::linkat(fd, "", dir_fd, name.c_str(), AT_EMPTY_PATH);
#else
  (void)fd;
  (void)dir_fd;
  (void)name;
  errno = EBADF;  // cannot happen: without O_TMPFILE every partial file is hidden
  return -1;
#endif
}

}  // namespace upload_server::detail
