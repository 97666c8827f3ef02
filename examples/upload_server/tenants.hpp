// upload_server/tenants.hpp - which partition of the pool an upload asks in
// (--partition, --tenant-header), and whether it skips admission
// (--bypass-token).
//
// With --partition NAME:G%:C% (repeatable) the pool is divided into named
// partitions (admit/partition.hpp). An upload names its tenant in a header
// (--tenant-header, default X-Tenant) or, without that header, in the query
// parameter `tenant` (?tenant=batch; for a WebSocket, the upgrade request's).
// A tenant that names no partition, and an upload that names none, go to the
// partition `default`, which is added as default:0%:100% unless a --partition
// names it: it is owed nothing and may borrow the whole pool.
//
// With --bypass-token TOKEN, a request with the header X-Admit-Bypass: TOKEN
// skips admission entirely (SlotPool::bypass(), counted in
// admit_bypassed_total): for health probes and admin. A wrong token is as no
// token: the upload is admitted as any other, so a guess gains nothing and
// a stale token in a probe still gets an answer.
#pragma once

#include <admit/partition.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace upload_server {

/// One --partition flag.
struct PartitionFlag {
  std::string name;
  admit::PartitionConfig config;
};

/// The partition that tenants that name none go to.
inline constexpr std::string_view default_partition = "default";

/// The query parameter that names the tenant when the header is absent.
inline constexpr std::string_view tenant_query_parameter = "tenant";

/// The header that carries the --bypass-token.
inline constexpr std::string_view bypass_header = "X-Admit-Bypass";

/// "batch:10%:30%" -> {batch, {10, 30}}. Throws std::invalid_argument
/// ("expected NAME:GUARANTEE%:CEILING%, ...") without the flag's name.
[[nodiscard]] PartitionFlag parse_partition_flag(std::string_view value);

/// Throws std::invalid_argument if `added` cannot join `existing`: the same
/// name twice, or guarantees adding up to more than 100 %.
void check_partition_set(const std::vector<PartitionFlag>& existing, const PartitionFlag& added);

/// The partitions the pool is given: `flags`, then default:0%:100% unless one
/// of them is named default; nothing without flags.
[[nodiscard]] std::vector<PartitionFlag> pool_partitions(const std::vector<PartitionFlag>& flags);

/// The tenant an upload names: `header_value` when not empty, else the query
/// parameter `tenant` of `target`, else "" (the default partition).
[[nodiscard]] std::string tenant_of(std::string_view header_value, std::string_view target);

/// Whether `header_value` (X-Admit-Bypass) matches `token`; never with an
/// empty token (no --bypass-token). Compared in constant time.
[[nodiscard]] bool bypass_requested(std::string_view header_value, std::string_view token) noexcept;

}  // namespace upload_server
