// pool_model_types.hpp - what the model of pool_model.hpp keeps, for
// pool_ops.cpp: the reservations the fuzzer holds, its async requests, the
// queue's waiters and the partitions, as plain values; and how a refusal is
// counted.
#pragma once

#include <admit/partition.hpp>
#include <admit/rejection.hpp>
#include <admit/stats.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pool_fuzz {

using admit::Reason;
using admit::Rejection;

constexpr std::size_t holder_count = 6;    // reservations the fuzzer holds by index
constexpr std::size_t request_count = 12;  // async requests per run, at most

/// What the model says a reservation holds.
struct ModelHolding {
  bool held = false;
  std::uint64_t bytes = 0;
  std::uint64_t declared = 0;
  std::string label;
  std::uint16_t partition = 0;  // 1-based, as the pool counts them; 0: none
};

/// What the model says about one async request.
struct ModelRequest {
  bool made = false;
  bool answered = false;
  bool admitted = false;
  Rejection rejection{};
  ModelHolding holding;  // the reservation the handler received, while it is kept there
};

struct ModelWaiter {
  std::size_t request;  // index into the requests
  std::uint64_t declared;
  std::uint64_t needed;
  std::uint16_t partition;  // 0: none
};

/// A partition as the model keeps it: its settings and what it holds; its
/// ceiling and guarantee are percents of whatever budget and slots are in
/// force, computed when asked (Model::share).
struct ModelPartition {
  std::string name;
  admit::PartitionConfig config;
  std::uint64_t bytes = 0;
  std::uint32_t slots = 0;
  std::uint64_t waiters = 0;
  std::uint64_t admitted = 0;
  admit::RejectionCounts rejected{};
};

/// Why the model refuses a request: the reason, and whether the partition's
/// ceiling refused it (then the figures are the partition's).
struct Refusal {
  Reason reason;
  bool by_partition = false;
};

/// One more refusal with `reason` in `counts`.
inline void count_refusal(admit::RejectionCounts& counts, Reason reason) noexcept {
  switch (reason) {
    case Reason::too_large:
      ++counts.too_large;
      break;
    case Reason::no_slot:
      ++counts.no_slot;
      break;
    case Reason::no_memory:
      ++counts.no_memory;
      break;
    case Reason::queue_full:
      ++counts.queue_full;
      break;
    case Reason::timeout:
      ++counts.timeout;
      break;
    case Reason::cancelled:
      ++counts.cancelled;
      break;
    case Reason::closed:
      ++counts.closed;
      break;
    case Reason::pressure:
      ++counts.pressure;
      break;
  }
}

}  // namespace pool_fuzz
