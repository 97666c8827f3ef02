#include "tenants.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "percent_encoding.hpp"

namespace upload_server {

namespace {

constexpr std::string_view partition_forms = "NAME:GUARANTEE%:CEILING% such as batch:10%:30%";

[[noreturn]] void reject_partition(std::string_view value) {
  throw std::invalid_argument("expected " + std::string{partition_forms} + ", got '" +
                              std::string{value} + "'");
}

std::uint32_t percent(std::string_view text, std::string_view value) {
  if (!text.ends_with('%')) reject_partition(value);
  text.remove_suffix(1);
  std::uint32_t result = 0;
  const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), result);
  if (text.empty() || error != std::errc{} || stop != text.data() + text.size() || result > 100) {
    reject_partition(value);
  }
  return result;
}

}  // namespace

PartitionFlag parse_partition_flag(std::string_view value) {
  const std::size_t first = value.find(':');
  if (first == std::string_view::npos) reject_partition(value);
  const std::size_t second = value.find(':', first + 1);
  if (second == std::string_view::npos) reject_partition(value);
  PartitionFlag flag;
  flag.name = value.substr(0, first);
  flag.config.guarantee_percent = percent(value.substr(first + 1, second - first - 1), value);
  flag.config.ceiling_percent = percent(value.substr(second + 1), value);
  // admit's own rules (names safe as metric labels, 0 <= G <= C, 1 <= C),
  // here so that the error names the flag rather than surfacing at start-up.
  if (const auto error = admit::validation_error(flag.name, flag.config)) {
    throw std::invalid_argument(*error + " in '" + std::string{value} + "'");
  }
  return flag;
}

void check_partition_set(const std::vector<PartitionFlag>& existing, const PartitionFlag& added) {
  std::uint32_t guarantees = added.config.guarantee_percent;
  for (const PartitionFlag& flag : existing) {
    if (flag.name == added.name) {
      throw std::invalid_argument("partition '" + added.name + "' is given twice");
    }
    guarantees += flag.config.guarantee_percent;
  }
  if (guarantees > 100) {
    throw std::invalid_argument("the guarantees add up to " + std::to_string(guarantees) +
                                " %, over 100 %, with '" + added.name + "'");
  }
}

std::vector<PartitionFlag> pool_partitions(const std::vector<PartitionFlag>& flags) {
  std::vector<PartitionFlag> result = flags;
  if (result.empty()) return result;
  const bool named = std::any_of(result.begin(), result.end(), [](const PartitionFlag& flag) {
    return flag.name == default_partition;
  });
  // Owed nothing (so it never takes from a guarantee) and capped by nothing
  // but the pool: uploads that name no tenant run as they did without
  // partitions, except that guaranteed tenants go first.
  if (!named) result.push_back({std::string{default_partition}, {0, 100}});
  return result;
}

std::string tenant_of(std::string_view header_value, std::string_view target) {
  if (!header_value.empty()) return std::string{header_value};
  QueryParameter query = query_parameter(target, tenant_query_parameter);
  return query.found && query.valid ? std::move(query.value) : std::string{};
}

bool bypass_requested(std::string_view header_value, std::string_view token) noexcept {
  if (token.empty() || header_value.size() != token.size()) return false;
  // Every byte compared whatever the first difference: the time taken does
  // not tell a guesser how much of the token was right.
  unsigned char differ = 0;
  for (std::size_t i = 0; i < token.size(); ++i) {
    differ |= static_cast<unsigned char>(header_value[i] ^ token[i]);
  }
  return differ == 0;
}

}  // namespace upload_server
