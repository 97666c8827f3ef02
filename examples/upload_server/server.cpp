#include "server.hpp"

#include <fmt/format.h>
#include <admit/asio.hpp>
#include <admit/fmt.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "metrics.hpp"
#include "tenants.hpp"

namespace upload_server {

namespace {

std::uint64_t free_bytes(const admit::Stats& stats) {
  return stats.bytes_in_use < stats.memory_budget ? stats.memory_budget - stats.bytes_in_use : 0;
}

void log_line(std::string_view line) {
  // One write per line, flushed: the log is read by people and tests as it grows.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// " partition=batch" with partitions, else nothing: logs without
// --partition read as they always did.
std::string partition_word(const UploadTenant& tenant) {
  return tenant.partition_name.empty() ? std::string{} : " partition=" + tenant.partition_name;
}

void log_admission(const Server& server, UploadId id, std::uint64_t declared_size,
                   const admit::Admission& admission, const UploadTenant& tenant) {
  if (admission) {
    const auto stats = server.pool.stats();
    log_line(fmt::format("{}#{}{} declared={} ({}) reserved={} ({}) free={} ({}) outcome=admitted\n",
                         id.protocol, id.number, partition_word(tenant), declared_size,
                         admit::ByteSize{declared_size}, admission->bytes(),
                         admit::ByteSize{admission->bytes()}, free_bytes(stats),
                         admit::ByteSize{free_bytes(stats)}));
  } else {
    // With limit partition, "free" is what the partition could still take;
    // the pool's refusals read as they always did.
    const admit::Rejection& refusal = admission.error();
    const bool by_partition = refusal.limit == admit::Limit::partition;
    log_line(fmt::format("{}#{}{} declared={} ({}) reserved=0 free={} ({}) outcome={}{} ({})\n",
                         id.protocol, id.number, partition_word(tenant), declared_size,
                         admit::ByteSize{declared_size}, refusal.available_bytes,
                         admit::ByteSize{refusal.available_bytes}, refusal.reason,
                         by_partition ? " limit=partition" : "", refusal));
  }
}

}  // namespace

UploadTenant choose_tenant(const Server& server, std::string_view tenant_value,
                           std::string_view bypass_value, std::string_view target) {
  UploadTenant tenant;
  tenant.bypass = bypass_requested(bypass_value, server.options.bypass_token);
  if (server.options.partitions.empty()) return tenant;
  std::string name = tenant_of(tenant_value, target);
  tenant.partition = name.empty() ? std::nullopt : server.pool.find_partition(name);
  if (!tenant.partition) {
    // main() always adds it with the others (pool_partitions).
    name = default_partition;
    tenant.partition = server.pool.find_partition(name);
  }
  tenant.partition_name = std::move(name);
  return tenant;
}

boost::asio::awaitable<admit::Admission> admit_upload(Server& server, UploadId id,
                                                      std::uint64_t declared_size,
                                                      const UploadTenant& tenant) {
  if (!server.options.admission) {
    log_line(fmt::format("{}#{}{} declared={} reserved=0 free=- outcome=admitted (admission off)\n",
                         id.protocol, id.number, partition_word(tenant), declared_size));
    co_return admit::SlotReservation{};
  }
  if (tenant.bypass) {
    log_line(fmt::format("{}#{}{} declared={} reserved=0 free=- outcome=admitted (bypass)\n",
                         id.protocol, id.number, partition_word(tenant), declared_size));
    co_return server.pool.bypass();
  }
  if (tenant.partition) {
    // As below, one statement per branch around the co_await.
    if (server.options.wait > std::chrono::milliseconds::zero()) {
      admit::Admission admission =
          co_await admit::asio::async_acquire_for(server.pool, declared_size, server.options.wait,
                                                 *tenant.partition, boost::asio::use_awaitable);
      log_admission(server, id, declared_size, admission, tenant);
      co_return admission;
    }
    admit::Admission admission = server.pool.try_acquire(declared_size, *tenant.partition);
    log_admission(server, id, declared_size, admission, tenant);
    co_return admission;
  }

  // Not a conditional expression around the co_await: GCC 12 destroys the
  // temporaries of such an expression twice, releasing a reservation twice.
  if (server.options.wait > std::chrono::milliseconds::zero()) {
    admit::Admission admission = co_await admit::asio::async_acquire_for(
        server.pool, declared_size, server.options.wait, boost::asio::use_awaitable);
    log_admission(server, id, declared_size, admission, tenant);
    co_return admission;
  }
  admit::Admission admission = server.pool.try_acquire(declared_size);
  log_admission(server, id, declared_size, admission, tenant);
  co_return admission;
}

namespace {

void log_end(const Server& server, UploadId id, std::uint64_t bytes, std::string_view outcome,
             std::uint64_t held_bytes, std::uint32_t held_slots) {
  const auto stats = server.pool.stats();
  const std::uint64_t in_use = stats.bytes_in_use - std::min(held_bytes, stats.bytes_in_use);
  const std::uint32_t slots = stats.slots_in_use - std::min(held_slots, stats.slots_in_use);
  log_line(fmt::format("{}#{} ended bytes={} ({}) outcome={}; in use now {} of {}, slots {}/{}\n",
                       id.protocol, id.number, bytes, admit::ByteSize{bytes}, outcome,
                       admit::ByteSize{in_use}, admit::ByteSize{stats.memory_budget}, slots,
                       stats.slots));
}

}  // namespace

void log_upload_end(const Server& server, UploadId id, std::uint64_t bytes,
                    std::string_view outcome) {
  log_end(server, id, bytes, outcome, 0, 0);
}

void log_upload_end(const Server& server, UploadId id, std::uint64_t bytes,
                    std::string_view outcome, const admit::SlotReservation& held) {
  // An empty reservation (--admission off) holds neither bytes nor a slot.
  log_end(server, id, bytes, outcome, held.bytes(), held ? 1 : 0);
}

std::optional<PartRefusal> allocate_part(const Server& server, admit::SlotReservation& reservation,
                                         std::uint64_t declared_size, MemoryPart& part) {
  const std::uint64_t reserved =
      reservation ? reservation.bytes() : server.options.policy.bytes_for(declared_size);
  return part.allocate(reservation, MemoryPart::size_for(reserved, declared_size));
}

void label_upload(admit::SlotReservation& reservation, const LiveUploads::Entry& upload) {
  if (!reservation) return;  // --admission off: nothing to name, and no need to format
  reservation.set_label(fmt::format("{}#{} {}", upload.protocol, upload.number, upload.name));
}

std::string describe(const PartRefusal& refusal) {
  if (refusal.rejection) {
    return fmt::format("no room for a {}-byte buffer: {}", refusal.bytes, *refusal.rejection);
  }
  return fmt::format("out of memory: cannot allocate {} bytes", refusal.bytes);
}

std::string metrics_text(const Server& server) {
  return prometheus_text(server.pool.stats()) + prometheus_text(server.pool.partition_stats()) +
         prometheus_text(server.connections.stats()) +
         prometheus_text(server.memory, server.pool.under_pressure()) +
         fmt::format(
             "# HELP upload_server_release_rate Uploads ended per second, smoothed: what "
             "Retry-After is estimated from.\n"
             "# TYPE upload_server_release_rate gauge\n"
             "upload_server_release_rate {:.3f}\n",
             server.retry.release_rate());
}

RateLimitFields rate_limit_now(const Server& server) {
  const bool admitting = !server.pool.closed() && !server.pool.under_pressure();
  return rate_limit_fields(server.pool.stats(), admitting);
}

boost::asio::awaitable<void> observe_pool(Server& server) {
  boost::asio::steady_timer timer{co_await boost::asio::this_coro::executor};
  for (;;) {
    server.retry.observe();
    timer.expires_after(RetryAdvice::sample_every);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
  }
}

}  // namespace upload_server
