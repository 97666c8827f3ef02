#include "body_limit.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>
#include <nlohmann/json.hpp>

namespace upload_server {

std::optional<OverBodyLimit> check_body_limit(const Options& options,
                                              std::uint64_t declared_size) noexcept {
  if (declared_size <= options.max_body) return std::nullopt;
  return OverBodyLimit{declared_size, options.max_body};
}

std::string over_body_limit_json(const OverBodyLimit& over) {
  const nlohmann::json body = {
      {"reason", "max_body"},
      {"message", fmt::format("the upload declares {} bytes ({}), more than the server's limit of "
                              "{} bytes ({})",
                              over.declared_size, admit::ByteSize{over.declared_size},
                              over.max_body, admit::ByteSize{over.max_body})},
      {"declared_size", over.declared_size},
      {"max_body", over.max_body},
  };
  return body.dump();
}

WebSocketRefusal over_body_limit_close(const OverBodyLimit& over) {
  // Two 20-digit numbers and the words fit well within max_close_reason.
  return {close_too_big, fmt::format("max_body: declared {} bytes, the limit is {} bytes",
                                     over.declared_size, over.max_body)};
}

}  // namespace upload_server
