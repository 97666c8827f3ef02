// file_name.cpp - fuzzes sanitize_file_name (storage.hpp), the one function
// between a client's file name and a path in the storage directory: whatever
// the client sent (already percent-decoded, so any bytes at all), what comes
// out must be a name that is safe to create and to show, as storage.hpp
// promises.
//
// Properties, for any bytes:
//   - the result is not empty, at most max_file_name_length bytes, and does
//     not start with '.' or '-' (no hidden file, no "." or "..", nothing a
//     shell reads as an option);
//   - every character in it is one storage.hpp allows: an ASCII byte of
//     [A-Za-z0-9._-] (so no '/', '\', NUL or control character), or
//     well-formed UTF-8 from U+00C0 on that is not a space, invisible or a
//     bidi control, taken as Unicode defines them (the White_Space,
//     Default_Ignorable_Code_Point and Bidi_Control properties, listed below
//     from Unicode 15's PropList.txt and DerivedCoreProperties.txt);
//   - it is a fixed point: UploadFile::open accepts only names that are
//     their own sanitize_file_name, so a name sanitized once must pass;
//   - only the base name counts: the result is that of the part after the
//     last '/' or '\';
//   - a short extension survives, truncation included: a base name with
//     something before its last '.' that is not all '.' and '-', and after it
//     1 to 15 of [A-Za-z0-9_-], keeps that ".ext" at its end;
//   - an ASCII base name short enough not to be truncated comes out exactly
//     as the header describes it: unsafe bytes as '_', leading '.' and '-'
//     dropped, "upload" if nothing is left.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "storage.hpp"

namespace {

using upload_server::max_file_name_length;
using upload_server::sanitize_file_name;

bool is_safe_ascii(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

struct Range {
  char32_t first;
  char32_t last;
};

// White_Space, Default_Ignorable_Code_Point and Bidi_Control from U+00C0 on
// (below it nothing non-ASCII may be kept at all).
constexpr Range forbidden[] = {
    {0x034f, 0x034f},    // combining grapheme joiner
    {0x061c, 0x061c},    // Arabic letter mark
    {0x115f, 0x1160},    // Hangul fillers
    {0x1680, 0x1680},    // Ogham space mark
    {0x17b4, 0x17b5},    // Khmer inherent vowels
    {0x180b, 0x180f},    // Mongolian free variation selectors, vowel separator
    {0x2000, 0x200f},    // spaces, zero-width space and joiners, LRM, RLM
    {0x2028, 0x202f},    // line and paragraph separators, bidi embeddings, narrow space
    {0x205f, 0x206f},    // medium space, word joiner, invisible operators, isolates
    {0x3000, 0x3000},    // ideographic space
    {0x3164, 0x3164},    // Hangul filler
    {0xfe00, 0xfe0f},    // variation selectors
    {0xfeff, 0xfeff},    // zero-width no-break space
    {0xffa0, 0xffa0},    // halfwidth Hangul filler
    {0xfff0, 0xfff8},    // reserved, default ignorable
    {0x1bca0, 0x1bca3},  // shorthand format controls
    {0x1d173, 0x1d17a},  // musical symbol format controls (beams, ties, slurs, phrases)
    {0xe0000, 0xe0fff},  // tags, variation selectors supplement
};

bool is_forbidden(char32_t c) {
  for (const Range& r : forbidden) {
    if (c >= r.first && c <= r.last) return true;
  }
  return false;
}

// Whether every character of `name` is one storage.hpp allows in a result.
bool has_only_allowed_characters(std::string_view name) {
  std::size_t i = 0;
  while (i < name.size()) {
    const auto lead = static_cast<unsigned char>(name[i]);
    if (lead < 0x80) {
      if (!is_safe_ascii(name[i])) return false;
      ++i;
      continue;
    }
    std::size_t length = 0;
    char32_t c = 0;
    char32_t smallest = 0;
    if ((lead & 0xe0) == 0xc0) {
      length = 2, c = lead & 0x1fU, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, c = lead & 0x0fU, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, c = lead & 0x07U, smallest = 0x10000;
    } else {
      return false;
    }
    if (name.size() - i < length) return false;  // cut in the middle of a character
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(name[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      c = (c << 6) | (next & 0x3fU);
    }
    if (c < smallest || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    if (c < 0xc0 || is_forbidden(c)) return false;
    i += length;
  }
  return true;
}

// The ".ext" that must survive in the name of `base`, or "" if none is promised.
std::string_view promised_extension(std::string_view base) {
  const std::size_t dot = base.rfind('.');
  if (dot == std::string_view::npos) return {};
  const std::string_view extension = base.substr(dot);
  if (extension.size() < 2 || extension.size() > 16) return {};
  for (const char c : extension.substr(1)) {
    if (!is_safe_ascii(c)) return {};
  }
  if (base.substr(0, dot).find_first_not_of(".-") == std::string_view::npos) return {};
  return extension;
}

// sanitize_file_name of an ASCII base name of at most max_file_name_length
// bytes, by the words of storage.hpp.
std::string expected_short_ascii(std::string_view base) {
  std::string name;
  for (const char c : base) name += is_safe_ascii(c) ? c : '_';
  name.erase(0, name.find_first_not_of(".-"));
  return name.empty() ? "upload" : name;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view client_name{reinterpret_cast<const char*>(data), size};
  const std::string name = sanitize_file_name(client_name);

  ADMIT_FUZZ_CHECK(!name.empty(), "the name is empty");
  ADMIT_FUZZ_CHECK(name.size() <= max_file_name_length, "the name is too long");
  ADMIT_FUZZ_CHECK(name.front() != '.' && name.front() != '-', "the name starts with '.' or '-'");
  ADMIT_FUZZ_CHECK(has_only_allowed_characters(name), "the name has a character it may not have");
  ADMIT_FUZZ_CHECK(sanitize_file_name(name) == name, "the name is not its own sanitize_file_name");

  const std::size_t separator = client_name.find_last_of("/\\");
  const std::string_view base =
      separator == std::string_view::npos ? client_name : client_name.substr(separator + 1);
  if (separator != std::string_view::npos) {
    ADMIT_FUZZ_CHECK(sanitize_file_name(base) == name,
                     "something before the last separator changed the name");
  }

  if (const std::string_view extension = promised_extension(base); !extension.empty()) {
    ADMIT_FUZZ_CHECK(name.ends_with(extension), "a short extension was lost");
  }

  bool ascii = true;
  for (const char c : base) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii && base.size() <= max_file_name_length) {
    ADMIT_FUZZ_CHECK(name == expected_short_ascii(base), "an ASCII name is not sanitized as told");
  }
  return 0;
}
