// percent_encoding.hpp - the encodings a client may put a file name in.
//
//   ?name=caf%C3%A9.txt                       RFC 3986 percent-encoding, in a query
//                                             (application/x-www-form-urlencoded:
//                                             '+' is a space)
//   filename*=UTF-8''caf%C3%A9.txt            RFC 8187 (formerly 5987) ext-value, in a
//                                             multipart part's Content-Disposition
//
// Both decode to bytes, never to a name that is safe: what they return goes
// through sanitize_file_name (storage.hpp), which keeps only the base name and
// a safe set of characters. Decoding first is what lets the sanitiser see a
// "%2F" as the '/' it is, and "caf%C3%A9" as one non-ASCII character.
//
// A '%' not followed by two hex digits is an error, not kept as text: the
// client meant an escape and got it wrong, so it is told (400) instead of
// having its file stored under a name it did not ask for.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace upload_server {

/// RFC 3986 section 2.1: every "%XX" (hex digits in either case) becomes the
/// byte XX, everything else is kept as is. With `plus_is_space`, '+' becomes
/// ' ' (application/x-www-form-urlencoded, as in a query string). nullopt if a
/// '%' is not followed by two hex digits.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text,
                                                        bool plus_is_space = false);

/// The inverse of percent_decode for tests and clients: every byte outside
/// RFC 3986's unreserved set [A-Za-z0-9-._~] becomes "%XX" (uppercase).
[[nodiscard]] std::string percent_encode(std::string_view bytes);

/// What query_parameter found.
struct QueryParameter {
  bool found = false;  ///< the key is in the query
  bool valid = true;   ///< false: the value has a bad '%' escape (value is then empty)
  std::string value;   ///< decoded
};

/// The value of `key` in the query of a request target ("/path?a=1&name=x"),
/// decoded as application/x-www-form-urlencoded (WHATWG URL): pairs split at
/// '&', keys and values percent-decoded with '+' as a space; the first pair
/// whose decoded key is `key` wins. A pair without '=' has an empty value.
[[nodiscard]] QueryParameter query_parameter(std::string_view target, std::string_view key);

/// An RFC 8187 ext-value: charset "'" [language] "'" percent-encoded value, as
/// in `filename*=UTF-8''caf%C3%A9.txt`. The charset is UTF-8 (which RFC 8187
/// requires) or ISO-8859-1 (which RFC 5987 allowed), in any case; ISO-8859-1
/// is converted to UTF-8. The language is ignored. nullopt if the two quotes
/// are missing, the charset is another one, or an escape is bad.
[[nodiscard]] std::optional<std::string> decode_ext_value(std::string_view ext_value);

}  // namespace upload_server
