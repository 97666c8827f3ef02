// upload_request.hpp - the first message of a WebSocket upload: what the client
// wants to store, {"name": "...", "size": N}.
//
// On its own, without Beast or a network, so that what a client may send as
// its request is unit tested and fuzzed as the pure function it is. Reading
// the message (within --first-message-timeout, at most
// max_upload_request_bytes) is websocket_session.cpp's; a longer message is
// refused there before it is parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace upload_server {

/// The longest upload request a client may send, in bytes.
inline constexpr std::size_t max_upload_request_bytes = 4096;

/// What the client asked to upload.
struct UploadRequest {
  std::string name;        ///< as sent (UTF-8, as JSON text is); sanitize_file_name makes it a name
  std::uint64_t size = 0;  ///< the bytes that will follow
};

/// `text` as an upload request: a JSON object with a string "name" and a
/// non-negative integer "size" that fits in 64 bits, other members ignored (a
/// repeated member: its last value counts, as in nlohmann::json). nullopt for
/// anything else: not JSON, not an object, a member missing or of another type
/// (a size such as 1.0, 1e3, -1 or "10" included). Does not throw.
[[nodiscard]] std::optional<UploadRequest> parse_upload_request(std::string_view text);

}  // namespace upload_server
