// any_policy.hpp - an admit memory policy chosen at run time (--policy).
//
// admit's SlotPool takes its policy as a template parameter, which is right
// for a library but means the server would need one pool type per policy.
// AnyPolicy is one type that holds any stock policy and is itself an
// admit::MemoryPolicy, so the server has exactly one SlotPool<AnyPolicy>. The
// cost is one switch per admission decision, which is negligible next to an
// upload.
#pragma once

#include <admit/policy.hpp>

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "quantities.hpp"

namespace upload_server {

class AnyPolicy {
 public:
  /// admit's default: the tiered table.
  AnyPolicy() : AnyPolicy(admit::DefaultPolicy{}) {}

  // Implicit, like std::variant's: an AnyPolicy *is* the policy it holds.
  AnyPolicy(admit::TieredPolicy policy)
      : policy_{policy}, name_{policy == admit::TieredPolicy{} ? "tiered" : "tiered:custom"} {}
  AnyPolicy(admit::FlatPolicy policy)
      : policy_{policy}, name_{"flat:" + std::to_string(policy.percent())} {}
  AnyPolicy(admit::FixedPolicy policy)
      : policy_{policy}, name_{"fixed:" + std::to_string(policy.bytes())} {}

  /// "tiered", "flat:PERCENT" (1..100) or "fixed:SIZE" (SIZE as parse_size
  /// reads it, at least one byte). Throws std::invalid_argument quoting `text`.
  /// flat:0 and fixed:0 are refused although admit accepts them: a policy
  /// that reserves nothing switches the memory budget off without saying so,
  /// which is more likely a typo than intent (--admission off is the switch).
  [[nodiscard]] static AnyPolicy parse(std::string_view text) {
    if (text == "tiered") return AnyPolicy{};
    if (text.starts_with("flat:")) {
      const std::string_view digits = text.substr(5);
      const char* const end = digits.data() + digits.size();
      std::uint32_t percent = 0;
      const auto [stop, error] = std::from_chars(digits.data(), end, percent);
      if (error == std::errc{} && stop == end && percent >= 1 && percent <= 100) {
        return admit::FlatPolicy{percent};
      }
    } else if (text.starts_with("fixed:")) {
      try {
        if (const std::uint64_t bytes = parse_size(text.substr(6)); bytes > 0) {
          return admit::FixedPolicy{bytes};
        }
      } catch (const std::invalid_argument&) {
        // Fall through to the message that names every accepted form.
      }
    }
    throw std::invalid_argument(
        "expected tiered, flat:PERCENT (1..100) or fixed:SIZE (such as fixed:8MiB), got '" +
        std::string{text} + "'");
  }

  /// What this policy reserves for an upload of `declared_size` bytes.
  [[nodiscard]] std::uint64_t bytes_for(std::uint64_t declared_size) const noexcept {
    return std::visit(
        [declared_size](const auto& p) noexcept { return p.bytes_for(declared_size); }, policy_);
  }

  /// A canonical spelling for logs and /stats: "tiered", "flat:10",
  /// "fixed:8388608" (bytes), or "tiered:custom" for a non-default table.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }

 private:
  std::variant<admit::TieredPolicy, admit::FlatPolicy, admit::FixedPolicy> policy_;
  std::string name_;
};

static_assert(admit::MemoryPolicy<AnyPolicy>);

}  // namespace upload_server
