// options.hpp - the upload server's command-line flags.
//
// Parsing is separate from main() so that every flag, default and error
// message is unit tested. Errors are std::invalid_argument whose message names
// the flag and quotes the offending value ("--budget: expected a size such as
// 200MiB, got '20x'"), ready to print above the usage text.
#pragma once

#include <admit/environment.hpp>  // admit::BudgetRule, what --budget auto derives the budget by
#include <admit/units.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "any_policy.hpp"
#include "quantities.hpp"  // parse_size, parse_duration: the flags' value syntax
#include "tenants.hpp"     // PartitionFlag

namespace upload_server {

/// --buffer: what an upload's bytes pass through on their way to the file.
enum class BufferMode {
  stream,  ///< one fixed 64-128 KiB buffer, whatever the upload reserved
  memory,  ///< a part of its reservation's size, charged to it (memory_part.hpp)
};

struct Options {
  std::string host = "127.0.0.1";           ///< --host: address to listen on
  std::uint16_t port = 8080;                ///< --port: 0 picks a free port
  std::filesystem::path dir = "uploads";    ///< --dir: where uploads are stored
  std::uint64_t budget = 200 * admit::MiB;  ///< --budget SIZE: memory for all uploads
  /// --budget auto[:PERCENT%[-SIZE]]: the budget is derived at start from the
  /// memory limit (admit::read_memory_facts under memory_root) by this rule,
  /// and `budget` is unused. Unset: `budget` as given.
  std::optional<admit::BudgetRule> budget_rule;
  std::uint32_t slots = 16;                  ///< --slots: uploads at once
  AnyPolicy policy;                          ///< --policy: bytes each upload reserves
  std::string policy_text = "tiered";        ///< --policy as given, for logs
  std::chrono::milliseconds wait{0};         ///< --wait: queue for room this long
  admit::Fairness fairness = admit::Fairness::fifo;  ///< --fairness: who goes first
  /// --max-head-wait: how long uploads may pass a waiting one (--fairness lanes).
  std::chrono::milliseconds max_head_wait = admit::PoolConfig{}.max_head_wait;
  std::uint64_t max_body = 64 * admit::GiB;  ///< --max-body: largest upload
  bool admission = true;                     ///< --admission off: admit everything
  /// --fsync off: commit an upload without fsync(2) of the file and the
  /// directory. The file is complete and named as before, but a crash of the
  /// machine (not of the server) soon after may lose it: nginx's default.
  bool fsync = true;
  /// --hash-threads: threads that compute uploads' SHA-256 beside the server's
  /// thread; 0 = on it; unset (auto) = HashThreads::default_count().
  std::optional<std::uint32_t> hash_threads;
  std::chrono::milliseconds grace{std::chrono::seconds{30}};  ///< --grace: drain on shutdown
  /// --buffer memory: hold each upload's bytes in memory charged to its
  /// reservation, so that what it reserved is what it really uses.
  BufferMode buffer = BufferMode::stream;
  /// --track-reservations off: no per-upload records in the pool
  /// (admit::PoolConfig::track_reservations), so SIGUSR1's diagnosis cannot
  /// name the largest upload; saves 64 bytes a slot and a clock read an admission.
  bool track_reservations = true;

  // Slow, idle and hostile clients (progress.hpp, connection_limits.hpp).
  /// --body-timeout: an admitted upload that delivers no data for this long is
  /// cut off (pings and pongs are not data).
  std::chrono::milliseconds body_timeout{std::chrono::seconds{30}};
  /// --min-rate: bytes per second an upload must average over each
  /// --body-timeout interval; 0 = no minimum.
  std::uint64_t min_rate = 0;
  /// --header-timeout: a connection must send a complete request (headers) this
  /// soon after it opens or after its previous request.
  std::chrono::milliseconds header_timeout{std::chrono::seconds{30}};
  /// --first-message-timeout: a WebSocket must send its upload request this
  /// soon after the upgrade.
  std::chrono::milliseconds first_message_timeout{std::chrono::seconds{10}};
  /// --max-connections: open client connections at once; 0 = derived from the
  /// descriptor limit (RLIMIT_NOFILE) at start-up.
  std::uint32_t max_connections = 0;
  /// --max-connections-per-ip: open connections from one address; 0 = no cap.
  std::uint32_t max_connections_per_ip = 0;

  // The memory the server runs in (memory_follow.hpp).
  /// --follow-memory: with --budget auto, read the memory limit and usage this
  /// often; the budget follows the limit, and the pool is under pressure (new
  /// uploads refused) between the --pressure watermarks. 0: read once at start.
  std::chrono::milliseconds follow_memory{0};
  /// --pressure HIGH%/LOW%: pressure on at usage >= HIGH % of the limit, off
  /// again at <= LOW %; LOW < HIGH <= 100.
  unsigned pressure_high = 90;
  unsigned pressure_low = 80;
  /// --memory-root: where --budget auto reads /proc and /sys (tests: a fake tree).
  std::filesystem::path memory_root = "/";

  // Tenants (tenants.hpp).
  /// --partition NAME:G%:C% (repeatable): the pool's partitions, in order;
  /// empty: no partitions, every upload limited by the pool alone.
  std::vector<PartitionFlag> partitions;
  /// --tenant-header: the header that names an upload's partition (before
  /// the query parameter `tenant`); only with --partition.
  std::string tenant_header = "X-Tenant";
  /// --bypass-token: X-Admit-Bypass with this value skips admission; empty: off.
  std::string bypass_token;

  bool help = false;  ///< --help: print usage() and exit
};

/// Parses the arguments after the program name. Accepts "--flag value" and
/// "--flag=value"; a later flag overrides an earlier one. Throws
/// std::invalid_argument naming the flag (or the unknown argument) and the value,
/// and for a flag that would have no effect without another (--follow-memory
/// needs --budget auto, --pressure needs --follow-memory, --memory-root needs
/// --budget auto, --tenant-header needs --partition), naming both.
[[nodiscard]] Options parse_options(std::span<const std::string_view> args);

/// The --help text, with `program` as the command name.
[[nodiscard]] std::string usage(std::string_view program);

}  // namespace upload_server
