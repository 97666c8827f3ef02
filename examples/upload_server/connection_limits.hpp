// upload_server/connection_limits.hpp - how many connections the server keeps,
// and which it lets go when descriptors run short.
//
// Every open connection holds a file descriptor, and a client can open them for
// free: a socket that connects and sends nothing (or half a request, or only a
// WebSocket upgrade) costs the client nothing and the server one descriptor for
// as long as the server waits. Out of descriptors, the server can accept nobody
// (a health check or a real upload), and its files cannot be opened either.
// So, as nginx does with its worker connections:
//
//   - At most `max_connections` connections are open at once, and at most
//     `max_per_ip` from one address (0: no cap). A connection over a limit is
//     answered at once, at accept, with 503 and Retry-After (refusal_response),
//     then closed: it holds its descriptor for no longer than that.
//   - A connection is *waiting* until it has sent a complete request: the HTTP
//     headers of a request, or a WebSocket's first message after the upgrade.
//     An idle keep-alive connection between two requests is waiting again.
//     Waiting connections are what the server may take back: at the cap, or
//     when descriptors run short, the connection that has waited longest is
//     closed to make room for the new one (nginx closes its idle keep-alive
//     connections, least recently used first, when it runs out of worker
//     connections). A connection busy with a request is never taken back; it
//     has its own deadlines (--body-timeout, progress.hpp).
//   - Oldest first protects the newcomers: a client that connects and sends its
//     request promptly (a health check, a browser) is busy long before it
//     could become the oldest waiting connection, however many idle ones a
//     flood opens.
//
// Closing is asynchronous: the registry asks its `close` function to end the
// connection (the server shuts down the socket's receive side, so the pending
// read of the connection's coroutine ends and the coroutine closes the socket),
// and the connection keeps its descriptor until that coroutine ends. Such
// connections are *closing*: not counted against the limits, but at most
// `closing_allowance` of them at once, so that descriptors stay bounded while a
// flood keeps the server shedding.
//
// This file needs only the standard library (no network): a connection is
// known by an integer handle (the socket's descriptor) and its peer address as
// text. The server's accept loop (main.cpp) holds the network side.
//
// Single-threaded, like the server: no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace upload_server {

/// What a connection is doing, as far as the limits care.
enum class ConnectionPhase : std::uint8_t {
  waiting,     ///< no complete request yet (or idle between requests): may be shed
  in_request,  ///< a request's headers (or a WebSocket's first message) are in
  uploading,   ///< an admitted upload (marked by a session that wants it shown)
  closing,     ///< shed: its coroutine is ending, its descriptor not yet closed
};

/// Why a connection was refused at accept.
enum class ConnectionRefusal : std::uint8_t {
  none,
  max_connections,  ///< --max-connections open, none of them waiting
  per_ip,           ///< --max-connections-per-ip open from this address
  descriptors,      ///< descriptors short (near ulimit -n), none of the open ones waiting
};

// Inline: metrics.cpp names them without linking this file's library.
/// "waiting", "in_request", "uploading", "closing".
[[nodiscard]] constexpr std::string_view to_string(ConnectionPhase phase) noexcept {
  switch (phase) {
    case ConnectionPhase::waiting:
      return "waiting";
    case ConnectionPhase::in_request:
      return "in_request";
    case ConnectionPhase::uploading:
      return "uploading";
    case ConnectionPhase::closing:
      return "closing";
  }
  return "unknown";
}

/// "max_connections", "max_connections_per_ip" or "descriptors": the reason in the 503's body
/// and the label of admit_connections_refused_total.
[[nodiscard]] constexpr std::string_view to_string(ConnectionRefusal refusal) noexcept {
  switch (refusal) {
    case ConnectionRefusal::none:
      return "none";
    case ConnectionRefusal::max_connections:
      return "max_connections";
    case ConnectionRefusal::per_ip:
      return "max_connections_per_ip";
    case ConnectionRefusal::descriptors:
      return "descriptors";
  }
  return "unknown";
}

struct ConnectionLimits {
  std::uint32_t max_connections = 1;  ///< >= 1
  std::uint32_t max_per_ip = 0;       ///< 0 = no cap
  /// Shed connections whose descriptor is not yet closed, at most: with that
  /// many closing, no more are shed (a newcomer at the cap is refused instead).
  std::uint32_t closing_allowance = 32;
};

/// A snapshot of the registry's figures, for /metrics.
struct ConnectionStats {
  std::uint32_t max_connections = 0;
  std::uint32_t max_per_ip = 0;
  std::uint64_t open = 0;  ///< every phase, closing included: descriptors held
  std::uint64_t waiting = 0;
  std::uint64_t in_request = 0;
  std::uint64_t uploading = 0;
  std::uint64_t closing = 0;
  std::uint64_t accepted_total = 0;
  std::uint64_t refused_max_connections_total = 0;
  std::uint64_t refused_per_ip_total = 0;
  std::uint64_t refused_descriptors_total = 0;
  std::uint64_t shed_total = 0;             ///< waiting connections closed to make room
  std::uint64_t accept_failures_total = 0;  ///< accept() errors (EMFILE and others)
};

// --- Descriptors ------------------------------------------------------------------

/// Descriptors kept back from connections by the default --max-connections:
/// 16 for the process itself (stdin/out/err, the listening socket, the
/// io_context's epoll, eventfd and timerfd, the signal pipe, logs), 2 per
/// upload slot (an upload's file and the directory it is linked into), and
/// `closing_allowance` (32) for connections shed or refused but not yet closed.
[[nodiscard]] std::uint64_t descriptor_reserve(std::uint32_t slots) noexcept;

/// Descriptors that must stay free for what is not a connection: 16 + 2 per
/// slot. An accepted socket whose descriptor number reaches `nofile` minus this
/// means descriptors run short (descriptors are allocated lowest first, so a
/// descriptor numbered n means n others are open).
[[nodiscard]] std::uint64_t descriptor_spare(std::uint32_t slots) noexcept;

/// The largest default --max-connections: past it, an idle connection's few KiB
/// of memory matter more than its descriptor.
inline constexpr std::uint32_t max_default_connections = 65'536;

/// The default --max-connections for a descriptor limit (RLIMIT_NOFILE's soft
/// limit, ulimit -n) of `nofile`: nofile - descriptor_reserve(slots), at most
/// max_default_connections; nullopt when fewer than 16 would remain.
[[nodiscard]] std::optional<std::uint32_t> default_max_connections(std::uint64_t nofile,
                                                                   std::uint32_t slots) noexcept;

// --- The registry -------------------------------------------------------------------

class ConnectionRegistry;

namespace detail {

/// A connection as the registry sees it.
struct ConnectionEntry {
  using Clock = std::chrono::steady_clock;
  std::uint64_t number = 0;
  int handle = -1;  // -1 once it may no longer be this connection's descriptor
  std::string peer;
  ConnectionPhase phase = ConnectionPhase::waiting;
  std::uint32_t busy = 0;       // live Busy tokens, in_request or uploading
  std::uint32_t uploading = 0;  // of which uploading
  Clock::time_point waiting_since{};
  bool released = false;  // its Connection is gone, a Busy token is not yet
};

using ConnectionList = std::list<ConnectionEntry>;

}  // namespace detail

/// One open connection's place in the registry, from accept until its socket
/// is closed: destroy it (or let the coroutine that owns it end) when the
/// socket closes. Move-only.
class Connection {
 public:
  /// Marks the connection busy (not waiting) while it lives: the sessions take
  /// one when a complete request is in. It may outlive its Connection (locals
  /// are destroyed in either order); it then marks nothing.
  class [[nodiscard]] Busy {
   public:
    Busy(Busy&& other) noexcept;
    Busy& operator=(Busy&&) = delete;
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;
    ~Busy();

   private:
    friend class Connection;
    Busy(ConnectionRegistry* registry, detail::ConnectionList::iterator entry,
         ConnectionPhase phase) noexcept
        : registry_{registry}, entry_{entry}, phase_{phase} {}
    ConnectionRegistry* registry_;  // nullptr: moved from, or registered nowhere
    detail::ConnectionList::iterator entry_;
    ConnectionPhase phase_;
  };

  Connection() = default;  ///< registered nowhere: busy() and the rest do nothing
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Busy with a request (in_request) or an upload (uploading) until the
  /// returned token is destroyed; then waiting again, as the newest waiting
  /// connection. Tokens nest; uploading wins over in_request.
  [[nodiscard]] Busy busy(ConnectionPhase phase = ConnectionPhase::in_request) noexcept;

  /// waiting for a connection registered nowhere.
  [[nodiscard]] ConnectionPhase phase() const noexcept;
  /// Whether the registry closed this connection to make room (a session whose
  /// read failed may then answer 408 or close 1013 instead of nothing).
  [[nodiscard]] bool shed() const noexcept { return phase() == ConnectionPhase::closing; }
  /// The accept order, from 1 (0: registered nowhere).
  [[nodiscard]] std::uint64_t number() const noexcept;

 private:
  friend class ConnectionRegistry;
  Connection(ConnectionRegistry* registry, detail::ConnectionList::iterator entry) noexcept
      : registry_{registry}, entry_{entry} {}
  ConnectionRegistry* registry_ = nullptr;  // nullptr: moved from, or registered nowhere
  detail::ConnectionList::iterator entry_{};
};

/// The open connections, each in the list of its phase, the waiting ones in
/// the order they started waiting.
class ConnectionRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  /// Ends the connection with this handle; called at most once per connection,
  /// never for a handle that may have been reused (see open()).
  using CloseFunction = std::function<void(int handle)>;

  ConnectionRegistry(ConnectionLimits limits, CloseFunction close);
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;
  /// Every Connection must be gone by then.
  ~ConnectionRegistry() = default;

  /// What open() decided.
  struct Opened {
    ConnectionRefusal refusal = ConnectionRefusal::none;
    Connection connection;   ///< registered (waiting) unless refused
    std::uint32_t shed = 0;  ///< waiting connections closed to make room for it
  };

  /// A connection was accepted at `now`: its handle (the socket's descriptor),
  /// its peer address as text, and whether descriptors run short (see
  /// descriptor_spare). In this order:
  ///   1. refused (per_ip) if its address has max_per_ip connections open;
  ///   2. at max_connections, or with descriptors short, the longest-waiting
  ///      connection is shed to make room;
  ///   3. refused (max_connections) if still at max_connections: none was
  ///      waiting, or closing_allowance shed connections are still closing;
  ///   4. refused (descriptors) if descriptors are short and none was shed:
  ///      keeping it would take a descriptor an upload's file needs, and drive
  ///      accept() into EMFILE;
  ///   5. otherwise registered, waiting.
  /// A refused connection is counted, not registered: the caller answers it
  /// (refusal_response) and closes it.
  /// A handle equal to a registered connection's means that connection's socket
  /// was closed before its Connection was destroyed, and the descriptor number
  /// reused: the older entry is never closed through it.
  [[nodiscard]] Opened open(int handle, std::string_view peer, bool descriptors_short,
                            Clock::time_point now = Clock::now());

  /// Sheds up to `at_most` waiting connections, longest-waiting first (when
  /// accept() fails for want of descriptors); returns how many.
  std::uint32_t shed_waiting(std::uint32_t at_most);

  /// Counts a failed accept() (for /metrics).
  void count_accept_failure() noexcept { ++accept_failures_; }

  [[nodiscard]] ConnectionStats stats() const noexcept;
  [[nodiscard]] const ConnectionLimits& limits() const noexcept { return limits_; }

  /// How long the longest-waiting connection has waited at `now` (zero if none).
  [[nodiscard]] Clock::duration longest_wait(Clock::time_point now) const noexcept;

 private:
  friend class Connection;
  using List = detail::ConnectionList;
  using Entry = List::iterator;

  [[nodiscard]] List& list_of(ConnectionPhase phase) noexcept;
  void move_to(Entry entry, ConnectionPhase phase) noexcept;
  void shed_oldest();
  void busy(Entry entry, ConnectionPhase phase) noexcept;
  void idle(Entry entry, ConnectionPhase phase) noexcept;
  void release(Entry entry) noexcept;
  void drop_peer(const std::string& peer) noexcept;

  ConnectionLimits limits_;
  CloseFunction close_;
  // Every entry is in exactly one list, the one of its phase.
  List waiting_;  // longest-waiting first
  List in_request_;
  List uploading_;
  List closing_;
  List released_;  // Connections gone whose Busy tokens are not: counted nowhere
  std::unordered_map<std::string, std::uint32_t> per_peer_;  // registered, not closing
  std::unordered_map<int, Entry> by_handle_;
  std::uint64_t next_number_ = 1;
  std::uint64_t accepted_ = 0;
  std::uint64_t refused_max_ = 0;
  std::uint64_t refused_per_ip_ = 0;
  std::uint64_t refused_descriptors_ = 0;
  std::uint64_t shed_ = 0;
  std::uint64_t accept_failures_ = 0;
};

/// The whole answer to a connection refused at accept: a minimal HTTP/1.1 503
/// with Retry-After: 1, Connection: close and a JSON body
/// {"reason":"max_connections"|"max_connections_per_ip"|"descriptors",
/// "message":...,"limit":N} (N: the per-address cap for max_connections_per_ip,
/// else --max-connections),
/// written at once, before any request is read (an HTTP client reads it as
/// the answer to its request; a WebSocket client as a failed handshake).
[[nodiscard]] std::string refusal_response(ConnectionRefusal refusal,
                                           const ConnectionLimits& limits);

// --- accept() failures --------------------------------------------------------------

/// When accept() fails (out of descriptors, most often): how long to pause
/// before the next try, and when to log. One line when an episode of failures
/// begins and one when accepting works again, however long it lasts, instead
/// of a line per failure. Under a flood, accept() fails and succeeds by turns
/// (each shed connection frees a descriptor for one newcomer): an episode ends
/// only once accepting has worked for `quiet` since the last failure.
class AcceptBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds room_made_pause{10};
  static constexpr std::chrono::milliseconds first_pause{50};
  static constexpr std::chrono::milliseconds longest_pause{1000};
  static constexpr std::chrono::seconds quiet{1};

  struct Failure {
    std::chrono::milliseconds pause;  ///< wait this long before accepting again
    bool first;                       ///< the first of an episode: log it
  };
  /// accept() failed at `now`; `made_room` if the caller could shed connections
  /// (then the next try comes after room_made_pause: the descriptors free up as
  /// those close). Otherwise each pause doubles, from first_pause up to
  /// longest_pause.
  [[nodiscard]] Failure failed(Clock::time_point now, bool made_room) noexcept;

  struct Episode {
    std::uint64_t failures;
    Clock::duration lasted;  ///< from its first failure to its last
  };
  /// accept() succeeded at `now`: the episode it ends (no failure for `quiet`;
  /// log it), else nullopt.
  [[nodiscard]] std::optional<Episode> succeeded(Clock::time_point now) noexcept;

 private:
  std::uint64_t failures_ = 0;
  Clock::time_point began_{};
  Clock::time_point last_failure_{};
  std::chrono::milliseconds pause_{0};
};

/// Whether an accept() error means the process (or system) is out of
/// descriptors or buffers, which shedding connections can cure: EMFILE, ENFILE,
/// ENOBUFS, ENOMEM.
[[nodiscard]] bool out_of_resources(int error_number) noexcept;

/// Whether an accept() error concerns only the connection being accepted (it
/// was reset before accept, or a network error Linux reports through accept):
/// accept again at once, quietly.
[[nodiscard]] bool connection_error(int error_number) noexcept;

}  // namespace upload_server
