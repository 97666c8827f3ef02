// upload_server/rate_limit.hpp - the pool's limits as the IETF RateLimit
// header fields, on every answer to an upload (admitted or refused).
//
// draft-ietf-httpapi-ratelimit-headers (checked against -11, May 2026; -12's
// abstract is the same) defines two response fields, each a Structured Field
// List (RFC 9651) of Items whose value is a String naming a quota policy:
//   RateLimit-Policy  the quota:           "name";q=QUOTA;qu="UNIT"
//   RateLimit         what is left of it:  "name";r=REMAINING
// The server has two quotas, the pool's, with no time window (w, t): both are
// held while an upload runs and come back when it ends.
//   RateLimit-Policy: "slots";q=16;qu="concurrent-requests",
//                     "memory";q=209715200;qu="content-bytes"
//   RateLimit: "slots";r=14, "memory";r=38797312
// (one line each on the wire).
// "concurrent-requests" and "content-bytes" are two of the draft's three
// registered quota units (the third, the default, is "requests"). The memory
// quota counts the bytes that uploads *reserve* (their policy's share of
// their size, e.g. 10 %), not the bytes they send: "content-bytes" is the
// draft's only unit of bytes, and the README says how to read it.
// While the pool admits nobody (closed, or under memory pressure) both r are
// 0: the draft lets a server advertise less than it has (its section 6),
// and it is the truth about the next upload.
#pragma once

#include <admit/stats.hpp>
#include <string>

namespace upload_server {

struct RateLimitFields {
  std::string policy;     ///< the RateLimit-Policy field's value
  std::string remaining;  ///< the RateLimit field's value
};

/// The fields for a pool in the state `stats`; `admitting` false (closed,
/// under pressure): nothing remains.
[[nodiscard]] RateLimitFields rate_limit_fields(const admit::Stats& stats, bool admitting);

}  // namespace upload_server
