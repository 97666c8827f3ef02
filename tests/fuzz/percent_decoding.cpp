// percent_decoding.cpp - fuzzes percent_encoding.hpp: %XX decoding and
// encoding, RFC 8187 ext-values (filename*) and query_parameter (?name=),
// which turn the file name a client sent into the bytes that
// sanitize_file_name sees. A decoder that accepted a bad escape, dropped or
// invented a byte, or let one query pair leak into another would store an
// upload under a name the client did not ask for.
//
// The first byte chooses what the rest of the input is:
//   0  text for percent_decode and percent_encode: nullopt exactly when a '%'
//      is not followed by two hex digits; otherwise each escape becomes one
//      byte and nothing else changes length; '+' is a space exactly when
//      asked; percent_encode gives only unreserved bytes and uppercase
//      escapes, and decodes back to its input, with '+' a space or not
//   1  an ext-value for decode_ext_value: nullopt exactly when the header says
//      (no two quotes, another charset, a bad escape); the value decoded as
//      percent_decode does, without '+' rules, then taken as UTF-8 or
//      converted from ISO-8859-1; the language ignored
//   2  a key (its length in the next byte, then its bytes) and a request
//      target, both arbitrary, for query_parameter: the result is coherent
//      (a bad escape is reported as found, with an empty value); a later pair
//      never changes what an earlier pair decided, and a pair with the key
//      added at the end is found when nothing before it matched
//   3  pairs (each key and value a length byte, then bytes) that are encoded
//      into a query the way a client would, with flags in the next byte:
//      query_parameter finds each key's first value, decoded back exactly, and
//      nothing for a key that is not there, whatever the fragment holds
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "percent_encoding.hpp"

namespace {

using upload_server::decode_ext_value;
using upload_server::percent_decode;
using upload_server::percent_encode;
using upload_server::query_parameter;
using upload_server::QueryParameter;

// The input, consumed from the front.
class Input {
 public:
  explicit Input(std::string_view bytes) : bytes_{bytes} {}

  std::uint8_t byte() {
    if (bytes_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return b;
  }
  // The next field: a length byte, then up to that many bytes.
  std::string_view field() { return take(byte()); }
  std::string_view take(std::size_t n) {
    const std::string_view taken = bytes_.substr(0, n);
    bytes_.remove_prefix(taken.size());
    return taken;
  }
  std::string_view rest() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_hex(char c) { return hex_value(c) >= 0; }

// Whether every '%' in `text` starts a "%XX" (an escape's own bytes are not
// looked at again: "%%41" is bad, "%2541" is "%41").
bool escapes_well_formed(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') continue;
    if (text.size() - i < 3 || !is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
    i += 2;
  }
  return true;
}

std::string replaced(std::string_view text, char from, char to) {
  std::string out{text};
  for (char& c : out) {
    if (c == from) c = to;
  }
  return out;
}

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void check_percent(std::string_view text) {
  const std::optional<std::string> decoded = percent_decode(text);
  const std::optional<std::string> decoded_plus = percent_decode(text, true);
  const bool well_formed = escapes_well_formed(text);
  ADMIT_FUZZ_CHECK(decoded.has_value() == well_formed,
                   "percent_decode refuses exactly the bad escapes: it does not");
  ADMIT_FUZZ_CHECK(decoded_plus.has_value() == well_formed,
                   "percent_decode with '+' refuses exactly the bad escapes: it does not");
  if (well_formed) {
    std::size_t percents = 0;
    for (const char c : text) percents += c == '%';
    ADMIT_FUZZ_CHECK(decoded->size() == text.size() - 2 * percents,
                     "percent_decode made other than one byte of each escape");
    // '+' is never a hex digit nor part of '%', so replacing it first must
    // give what the '+' rule gives.
    ADMIT_FUZZ_CHECK(decoded_plus == percent_decode(replaced(text, '+', ' ')),
                     "percent_decode's '+' rule is not '+' as a space");
  }

  const std::string encoded = percent_encode(text);
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      ADMIT_FUZZ_CHECK(is_unreserved(encoded[i]), "percent_encode left a reserved byte");
      continue;
    }
    ADMIT_FUZZ_CHECK(encoded.size() - i >= 3, "percent_encode wrote a cut escape");
    for (const char c : encoded.substr(i + 1, 2)) {
      ADMIT_FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'),
                       "percent_encode wrote an escape that is not two uppercase hex digits");
    }
    const auto byte = static_cast<char>(hex_value(encoded[i + 1]) * 16 + hex_value(encoded[i + 2]));
    ADMIT_FUZZ_CHECK(!is_unreserved(byte), "percent_encode escaped an unreserved byte");
    i += 2;
  }
  ADMIT_FUZZ_CHECK(percent_decode(encoded) == text, "percent_encode does not decode back");
  ADMIT_FUZZ_CHECK(percent_decode(encoded, true) == text,
                   "percent_encode does not decode back with '+' as a space");
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The ISO-8859-1 bytes whose UTF-8 `utf8` is, or nullopt if it holds
// anything else (a code point above U+00FF, or what is not UTF-8).
std::optional<std::string> latin1_of(std::string_view utf8) {
  std::string latin1;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      latin1 += utf8[i];
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < utf8.size() &&
               (static_cast<unsigned char>(utf8[i + 1]) & 0xc0) == 0x80) {
      latin1 += static_cast<char>(((c & 0x03) << 6) | (utf8[++i] & 0x3f));
    } else {
      return std::nullopt;
    }
  }
  return latin1;
}

void check_ext_value(std::string_view text) {
  const std::optional<std::string> decoded = decode_ext_value(text);

  const std::size_t first = text.find('\'');
  const std::size_t second = first == std::string_view::npos ? first : text.find('\'', first + 1);
  if (second == std::string_view::npos) {
    ADMIT_FUZZ_CHECK(!decoded, "decode_ext_value accepted a value without its two quotes");
    return;
  }
  const std::string_view charset = text.substr(0, first);
  const std::string_view value = text.substr(second + 1);
  const bool utf8 = iequals(charset, "utf-8");
  const bool latin1 = iequals(charset, "iso-8859-1");
  const std::optional<std::string> bytes = percent_decode(value);
  ADMIT_FUZZ_CHECK(decoded.has_value() == ((utf8 || latin1) && escapes_well_formed(value)),
                   "decode_ext_value refuses other than a bad charset or escape");
  if (!decoded) return;
  if (utf8) {
    ADMIT_FUZZ_CHECK(decoded == bytes, "a UTF-8 ext-value is not its percent-decoded bytes");
  } else {
    ADMIT_FUZZ_CHECK(latin1_of(*decoded) == bytes,
                     "an ISO-8859-1 ext-value is not its bytes in UTF-8");
  }
  const std::string without_language = std::string{charset} + "''" + std::string{value};
  ADMIT_FUZZ_CHECK(decode_ext_value(without_language) == decoded,
                   "the language of an ext-value changed its value");
}

bool same(const QueryParameter& a, const QueryParameter& b) {
  return a.found == b.found && a.valid == b.valid && a.value == b.value;
}

void check_raw_query(std::string_view key, std::string_view target) {
  const QueryParameter result = query_parameter(target, key);
  if (!result.found) {
    ADMIT_FUZZ_CHECK(result.valid && result.value.empty(), "a key not found has a value");
  }
  if (!result.valid) {
    ADMIT_FUZZ_CHECK(result.found && result.value.empty(), "a bad value is not found and empty");
  }
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) {
    ADMIT_FUZZ_CHECK(!result.found, "a key was found in a target without a query");
    return;
  }
  ADMIT_FUZZ_CHECK(result.value.size() <= target.size(), "a value is longer than the target");

  // A pair for the key at the end, which encoding makes decode back to it.
  const std::string later = std::string{target} + "&" + percent_encode(key) + "=later";
  const QueryParameter with_later = query_parameter(later, key);
  if (result.found) {
    ADMIT_FUZZ_CHECK(same(with_later, result), "a later pair changed what an earlier one decided");
  } else if (target.find('#', question) == std::string_view::npos) {
    ADMIT_FUZZ_CHECK(same(with_later, {true, true, "later"}),
                     "a pair for the key at the end of the query was not found");
  }
}

void check_built_query(Input& input) {
  const std::uint8_t flags = input.byte();
  const bool plus_for_space = (flags & 1) != 0;
  const bool bare_empty = (flags & 2) != 0;  // "k" rather than "k=" for an empty value
  const bool fragment = (flags & 4) != 0;

  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  while (!input.empty()) {
    const std::string_view key = input.field();
    pairs.emplace_back(key, input.field());
  }
  const auto encode = [plus_for_space](std::string_view bytes) {
    std::string encoded = percent_encode(bytes);
    if (!plus_for_space) return encoded;
    std::string out;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      if (encoded.compare(i, 3, "%20") == 0) {
        out += '+';
        i += 2;
      } else {
        out += encoded[i];
      }
    }
    return out;
  };
  std::string target = "/upload?";
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (i != 0) target += '&';
    target += encode(pairs[i].first);
    if (!(bare_empty && pairs[i].second.empty())) target += "=" + encode(pairs[i].second);
  }
  // A fragment is not part of the query, even where it looks like a pair of it.
  if (fragment) target += "#" + (pairs.empty() ? std::string{} : encode(pairs[0].first)) + "=x";

  const auto has_key = [&pairs](std::string_view key, std::size_t before) {
    for (std::size_t j = 0; j < before; ++j) {
      if (pairs[j].first == key) return true;
    }
    return false;
  };
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto [key, value] = pairs[i];
    if (has_key(key, i)) continue;  // the first pair with a key wins
    ADMIT_FUZZ_CHECK(same(query_parameter(target, key), {true, true, std::string{value}}),
                     "a key's first value was not found as encoded");
  }
  std::string absent = "absent";
  while (has_key(absent, pairs.size())) absent += '_';
  ADMIT_FUZZ_CHECK(!query_parameter(target, absent).found, "a key not in the query was found");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input input{std::string_view{reinterpret_cast<const char*>(data), size}};
  switch (input.byte() % 4) {
    case 0:
      check_percent(input.rest());
      break;
    case 1:
      check_ext_value(input.rest());
      break;
    case 2: {
      const std::string_view key = input.field();
      check_raw_query(key, input.rest());
      break;
    }
    default:
      check_built_query(input);
      break;
  }
  return 0;
}
