// upload_server/server.hpp - what every connection of the server shares, and
// the one place where an upload asks admit for room.
//
// The server runs on one thread: an io_context that every connection's
// coroutine shares, so this state needs no locks. admit's own threads (the
// pool's timer, for --wait) and the hashing threads never touch it: admit::asio
// hands their answers back to the io_context.
#pragma once

#include <admit/admission.hpp>
#include <admit/pool.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "any_policy.hpp"
#include "connection_limits.hpp"
#include "live_uploads.hpp"
#include "memory_part.hpp"
#include "metrics.hpp"  // MemoryFigures
#include "options.hpp"
#include "rate_limit.hpp"
#include "retry_advice.hpp"

namespace upload_server {

using Pool = admit::SlotPool<AnyPolicy>;

/// What a running upload does when the shutdown's grace runs out: say so to
/// its client (a WebSocket close 1001) rather than have the connection reset.
class CutOffs {
 public:
  using Hook = std::function<void()>;

  /// Keeps `hook` registered while the returned handle lives.
  class Registration {
   public:
    Registration(CutOffs& owner, std::list<Hook>::iterator at) : owner_{owner}, at_{at} {}
    ~Registration() { end(); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

    /// Unregisters now (idempotent): once an upload closes the connection
    /// itself, a cut-off must not close it a second time.
    void end() noexcept {
      if (registered_) owner_.hooks_.erase(at_);
      registered_ = false;
    }

   private:
    CutOffs& owner_;
    std::list<Hook>::iterator at_;
    bool registered_ = true;
  };

  [[nodiscard]] Registration add(Hook hook) {
    return Registration{*this, hooks_.insert(hooks_.end(), std::move(hook))};
  }

  /// Runs every hook; returns how many (each one's client was told).
  std::size_t run_all() {
    // A hook may end its upload, and with it the registration: run copies.
    const std::vector<Hook> hooks(hooks_.begin(), hooks_.end());
    for (const Hook& hook : hooks) hook();
    return hooks.size();
  }

  /// Hooks registered: uploads that can still be told.
  [[nodiscard]] std::size_t size() const noexcept { return hooks_.size(); }

 private:
  std::list<Hook> hooks_;
};

struct Server {
  const Options& options;
  Pool& pool;
  ConnectionRegistry& connections;  // every open connection and its phase
  RetryAdvice& retry;               // when a refused client should come back
  std::uint64_t next_upload_id = 1;
  int uploads_running = 0;  // admitted and not finished; read by the shutdown
  int uploads_told = 0;     // of those, the ones whose client has had its answer (a close)
  CutOffs cut_offs;
  MemoryFigures memory{};      // the limit and the usage last read (memory_follow.hpp)
  LiveUploads live_uploads{};  // every admitted upload, for GET /debug/uploads
};

/// The body of GET /metrics: the pool's figures, the connections' and the
/// memory's (metrics.hpp).
[[nodiscard]] std::string metrics_text(const Server& server);

/// RateLimit-Policy and RateLimit for the pool now (rate_limit.hpp).
[[nodiscard]] RateLimitFields rate_limit_now(const Server& server);

/// Samples the pool for server.retry every RetryAdvice::sample_every, until
/// the io_context stops.
[[nodiscard]] boost::asio::awaitable<void> observe_pool(Server& server);

/// Names an upload in the log: "http#12", "ws#3".
struct UploadId {
  std::string_view protocol;
  std::uint64_t number;
};

/// Where an upload asks for room (tenants.hpp): its partition, if the pool
/// has any, and whether it skips admission.
struct UploadTenant {
  std::optional<admit::Partition> partition;  ///< nullopt: no --partition
  std::string partition_name;                 ///< for the log; empty without partitions
  bool bypass = false;                        ///< a right X-Admit-Bypass token
};

/// The tenant of a request: `tenant_value` is its --tenant-header's value,
/// `bypass_value` its X-Admit-Bypass's, `target` its request target (for
/// ?tenant=). A tenant that names no partition gets `default`.
[[nodiscard]] UploadTenant choose_tenant(const Server& server, std::string_view tenant_value,
                                         std::string_view bypass_value, std::string_view target);

/// Asks the pool for room for `declared_size` bytes, in the tenant's
/// partition if it has one: at once, or waiting up to --wait for others to
/// finish. Logs the outcome in one line, naming the partition. With
/// --admission off, admits everything with an empty reservation (to measure
/// what admission costs); a bypass is admitted with an empty one, counted.
/// `tenant` is read after the first suspension: it must outlive the co_await
/// (hence no default argument, whose temporary might not).
[[nodiscard]] boost::asio::awaitable<admit::Admission> admit_upload(Server& server, UploadId id,
                                                                    std::uint64_t declared_size,
                                                                    const UploadTenant& tenant);

/// --buffer memory: allocates `part` for an upload of `declared_size` bytes
/// that holds `reservation` (memory_part.hpp) and returns nullopt, or returns
/// why it could not. With --admission off (an empty reservation) the part is
/// as large as the policy would have reserved.
[[nodiscard]] std::optional<PartRefusal> allocate_part(const Server& server,
                                                       admit::SlotReservation& reservation,
                                                       std::uint64_t declared_size,
                                                       MemoryPart& part);

/// Names the upload in the pool's records (SIGUSR1's diagnosis): "ws#17
/// big.zip". Again once its name changes (a multipart body names its file
/// late); nothing with tracking off or an empty reservation.
void label_upload(admit::SlotReservation& reservation, const LiveUploads::Entry& upload);

/// A part's refusal for the log: "no room for a 65536-byte buffer: upload of
/// ..." (the pool's), or "out of memory: cannot allocate 20971520 bytes".
[[nodiscard]] std::string describe(const PartRefusal& refusal);

/// Logs how an upload that holds no reservation ended (it left while
/// waiting for room, say).
void log_upload_end(const Server& server, UploadId id, std::uint64_t bytes,
                    std::string_view outcome);

/// Logs how an admitted upload ended: "stored", or why it did not. `held` is
/// its reservation, still held while it logs: "in use now" is what the pool
/// holds once it comes back, not counting it.
void log_upload_end(const Server& server, UploadId id, std::uint64_t bytes,
                    std::string_view outcome, const admit::SlotReservation& held);

/// Counts an admitted upload as running while it lives (for the shutdown).
class RunningUpload {
 public:
  explicit RunningUpload(Server& server) noexcept : server_{server} { ++server_.uploads_running; }
  ~RunningUpload() { --server_.uploads_running; }
  RunningUpload(const RunningUpload&) = delete;
  RunningUpload& operator=(const RunningUpload&) = delete;

 private:
  Server& server_;
};

}  // namespace upload_server
