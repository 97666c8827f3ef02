// upload_request.cpp - the upload request, read with nlohmann::json.
#include "upload_request.hpp"

#include <nlohmann/json.hpp>

namespace upload_server {

std::optional<UploadRequest> parse_upload_request(std::string_view text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return std::nullopt;
  const auto name = json.find("name");
  const auto size = json.find("size");
  // is_number_unsigned: nlohmann reads a number without sign, fraction or
  // exponent that fits in 64 bits as unsigned, anything else as signed or a
  // double; so 1.0, 1e3, -1 and 2^64 are all refused here.
  if (name == json.end() || !name->is_string() || size == json.end() ||
      !size->is_number_unsigned()) {
    return std::nullopt;
  }
  return UploadRequest{name->get<std::string>(), size->get<std::uint64_t>()};
}

}  // namespace upload_server
