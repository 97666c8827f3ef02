// ws_upload_client: one upload to the example server over WebSocket, as fast
// as a client can send it, for the benchmarks.
//
//   admit_ws_upload_client --port P [--host 127.0.0.1] [--file PATH | --size N]
//                          [--name NAME] [--frame BYTES] [--timeout SECONDS]
//
// Speaks the server's protocol (examples/upload_server/websocket_session.hpp):
// {"name", "size"}, waits for "ready", sends the bytes as one binary message
// in frames of --frame bytes (1 MiB), waits for "done" and the close. Prints
// one JSON line: bytes, seconds (connect to "done"), data_seconds ("ready" to
// "done"), MB/s (10^6 bytes per second over `seconds`), the server's SHA-256.
// Exits 1 on any failure, 2 on bad arguments, 3 when --timeout (600 s) passes.
//
// The Python client of the end-to-end tests masks frames in pure Python and
// would be the bound; Beast masks in C++, and a frame of a megabyte is sent
// with few system calls (write_buffer_bytes), so the server is measured.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string host = "127.0.0.1";
  std::string port;
  std::string file;
  std::optional<std::uint64_t> size;
  std::string name = "ws_upload_client.bin";
  std::size_t frame = 1024 * 1024;
  std::uint64_t timeout_seconds = 600;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "ws_upload_client: %s\nusage: ws_upload_client --port P [--host H] "
               "[--file PATH | --size N] [--name NAME] [--frame BYTES] [--timeout SECONDS]\n",
               why.c_str());
  std::exit(2);
}

std::uint64_t number(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    usage(std::string{flag} + ": not a number: " + std::string{text});
  }
  return value;
}

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) usage(std::string{flag} + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--host") {
      args.host = value;
    } else if (flag == "--port") {
      args.port = value;
    } else if (flag == "--file") {
      args.file = value;
    } else if (flag == "--size") {
      args.size = number(flag, value);
    } else if (flag == "--name") {
      args.name = value;
    } else if (flag == "--frame") {
      args.frame = number(flag, value);
    } else if (flag == "--timeout") {
      args.timeout_seconds = number(flag, value);
    } else {
      usage("unknown flag " + std::string{flag});
    }
  }
  if (args.port.empty()) usage("--port is required");
  if (args.file.empty() && !args.size) usage("--file or --size is required");
  if (args.frame == 0 || args.frame > 64 * 1024 * 1024) usage("--frame: 1 byte to 64 MiB");
  if (args.timeout_seconds == 0) usage("--timeout must be positive");
  return args;
}

// Ends the process once the deadline passes, whatever the blocking call it
// is stuck in: synchronous sockets have no timeout of their own.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_{[this, limit] {
          std::unique_lock lock{mutex_};
          if (!done_changed_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "ws_upload_client: no result within %lld s\n",
                         static_cast<long long>(limit.count()));
            std::_Exit(3);
          }
        }} {}
  ~Watchdog() {
    {
      const std::lock_guard lock{mutex_};
      done_ = true;
    }
    done_changed_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

// The bytes to send: a file's, read as they go, or zeros.
class Source {
 public:
  explicit Source(const std::string& path) {
    if (path.empty()) return;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error{path + ": " + std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw std::runtime_error{path + ": " + std::strerror(errno)};
    file_size_ = static_cast<std::uint64_t>(st.st_size);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~Source() {
    if (fd_ >= 0) ::close(fd_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  [[nodiscard]] std::optional<std::uint64_t> file_size() const {
    return fd_ >= 0 ? std::optional{file_size_} : std::nullopt;
  }

  /// Fills `into` completely; zeros need no reading (the buffer starts zeroed).
  void fill(char* into, std::size_t n) {
    if (fd_ < 0) return;
    while (n > 0) {
      const ssize_t got = ::read(fd_, into, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw std::runtime_error{std::string{"read: "} + std::strerror(errno)};
      if (got == 0) throw std::runtime_error{"the file is shorter than --size"};
      into += got;
      n -= static_cast<std::size_t>(got);
    }
  }

 private:
  int fd_ = -1;
  std::uint64_t file_size_ = 0;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads the next text message as JSON; a close or anything else is a failure.
nlohmann::json read_status(websocket::stream<net::ip::tcp::socket>& ws) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  ws.read(buffer, ec);
  if (ec == websocket::error::closed) {
    throw std::runtime_error{"closed by the server: " + std::to_string(ws.reason().code) + " " +
                             std::string(ws.reason().reason.data(), ws.reason().reason.size())};
  }
  if (ec) throw beast::system_error{ec};
  if (!ws.got_text()) throw std::runtime_error{"expected a text message"};
  auto json = nlohmann::json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
  if (!json.is_object() || !json.contains("status")) {
    throw std::runtime_error{"not a status: " + beast::buffers_to_string(buffer.data())};
  }
  return json;
}

int run(const Args& args) {
  Source source{args.file};
  const std::uint64_t size = args.size ? *args.size : *source.file_size();
  if (source.file_size() && *source.file_size() < size) {
    throw std::runtime_error{"the file is shorter than --size"};
  }

  net::io_context io;
  net::ip::tcp::resolver resolver{io};
  websocket::stream<net::ip::tcp::socket> ws{io};
  const Clock::time_point start = Clock::now();
  net::connect(ws.next_layer(), resolver.resolve(args.host, args.port));
  ws.next_layer().set_option(net::ip::tcp::no_delay{true});
  ws.handshake(args.host + ":" + args.port, "/ws/upload");

  ws.text(true);
  ws.write(net::buffer(nlohmann::json{{"name", args.name}, {"size", size}}.dump()));
  if (const auto ready = read_status(ws); ready["status"] != "ready") {
    throw std::runtime_error{"expected ready, got " + ready.dump()};
  }
  const Clock::time_point ready_at = Clock::now();

  // One frame per write_some: Beast masks through its write buffer, which as
  // large as a frame makes a frame one system call instead of one per 4 KiB.
  ws.binary(true);
  ws.auto_fragment(false);
  ws.write_buffer_bytes(args.frame);
  std::vector<char> frame(args.frame);
  std::uint64_t sent = 0;
  do {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(args.frame, size - sent));
    source.fill(frame.data(), n);
    sent += n;
    ws.write_some(sent == size, net::buffer(frame.data(), n));
  } while (sent < size);

  // "progress" messages may come before "done".
  nlohmann::json done;
  do {
    done = read_status(ws);
  } while (done["status"] == "progress");
  const double seconds = seconds_since(start);
  const double data_seconds = seconds_since(ready_at);
  if (done["status"] != "done" || done.value("bytes", std::uint64_t{0}) != size) {
    throw std::runtime_error{"expected done with " + std::to_string(size) + " bytes, got " +
                             done.dump()};
  }
  // The server closes with 1000; Beast answers the close inside the read.
  beast::flat_buffer rest;
  beast::error_code ec;
  ws.read(rest, ec);
  if (ec != websocket::error::closed || ws.reason().code != websocket::close_code::normal) {
    throw std::runtime_error{"expected close 1000, got " + std::to_string(ws.reason().code) + " (" +
                             ec.message() + ")"};
  }

  const nlohmann::json result = {
      {"bytes", size},
      {"seconds", seconds},
      {"data_seconds", data_seconds},
      {"mb_per_s", seconds > 0 ? static_cast<double>(size) / seconds / 1e6 : 0.0},
      {"frame_bytes", args.frame},
      {"sha256", done.value("sha256", "")}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const Watchdog watchdog{std::chrono::seconds{args.timeout_seconds}};
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_upload_client: %s\n", e.what());
    return 1;
  }
}
