// percent_encoding.cpp - %XX, the query string and RFC 8187 ext-values.
#include "percent_encoding.hpp"

namespace upload_server {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// ISO-8859-1 is the first 256 code points of Unicode: each byte at or above
// 0x80 is a two-byte UTF-8 sequence.
std::string latin1_to_utf8(std::string_view latin1) {
  std::string utf8;
  utf8.reserve(latin1.size());
  for (const char ch : latin1) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      utf8 += ch;
    } else {
      utf8 += static_cast<char>(0xc0 | (c >> 6));
      utf8 += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return utf8;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // "%" or "%X" at the end
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_encode(std::string_view bytes) {
  constexpr std::string_view digits = "0123456789ABCDEF";
  std::string out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  return out;
}

QueryParameter query_parameter(std::string_view target, std::string_view key) {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) return {};
  std::string_view query = target.substr(question + 1);
  query = query.substr(0, query.find('#'));  // a fragment is not sent, but never part of a value
  while (true) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    // A key with a bad escape cannot be `key`: skip it rather than refuse a
    // request over a parameter nobody reads.
    const std::optional<std::string> name = percent_decode(pair.substr(0, eq), true);
    if (name && *name == key) {
      if (eq == std::string_view::npos) return {true, true, {}};
      std::optional<std::string> value = percent_decode(pair.substr(eq + 1), true);
      if (!value) return {true, false, {}};
      return {true, true, std::move(*value)};
    }
    if (amp == std::string_view::npos) return {};
    query.remove_prefix(amp + 1);
  }
}

std::optional<std::string> decode_ext_value(std::string_view ext_value) {
  const std::size_t first = ext_value.find('\'');
  if (first == std::string_view::npos) return std::nullopt;
  const std::size_t second = ext_value.find('\'', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const std::string_view charset = ext_value.substr(0, first);
  const bool utf8 = iequals_ascii(charset, "UTF-8");
  if (!utf8 && !iequals_ascii(charset, "ISO-8859-1")) return std::nullopt;
  // RFC 8187: no '+' rule here, a '+' is a '+'.
  std::optional<std::string> value = percent_decode(ext_value.substr(second + 1));
  if (!value) return std::nullopt;
  return utf8 ? std::move(*value) : latin1_to_utf8(*value);
}

}  // namespace upload_server
