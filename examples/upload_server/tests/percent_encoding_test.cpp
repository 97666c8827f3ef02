// Tests for percent_encoding.hpp: %XX, the query string and RFC 8187
// ext-values, by example and property-style over random inputs: decoding
// round-trips, and whatever it produces, sanitize_file_name (storage.hpp)
// turns into a safe name (no separator, no hidden file, its own fixed point).
#include "percent_encoding.hpp"

#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "storage.hpp"

using upload_server::decode_ext_value;
using upload_server::percent_decode;
using upload_server::percent_encode;
using upload_server::query_parameter;
using upload_server::sanitize_file_name;

namespace {

std::string random_bytes(std::mt19937& rng, std::size_t max_size) {
  std::uniform_int_distribution<std::size_t> size{0, max_size};
  std::uniform_int_distribution<int> byte{0, 255};
  std::string s(size(rng), '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// Random text made mostly of what matters here: escapes (good and bad),
// separators, dots, dashes and UTF-8.
std::string random_escaped(std::mt19937& rng) {
  static const std::vector<std::string> pieces{
      "%",   "%2F", "%2f", "%5C",      "%2E", "%2e", "%00", "%C3%A9", "%C3", "%A9",
      "%zz", "%4",  "/",   "\\",       ".",   "..",  "-",   "+",      "a",   "Z",
      "0",   "_",   " ",   "\xC3\xA9", "%25", "%2B", "%20", "\n",     "\r",  "~"};
  std::uniform_int_distribution<std::size_t> count{0, 12};
  std::uniform_int_distribution<std::size_t> pick{0, pieces.size() - 1};
  std::string s;
  for (std::size_t n = count(rng); n > 0; --n) s += pieces[pick(rng)];
  return s;
}

bool is_safe_name(const std::string& name) {
  if (name.empty() || name.size() > upload_server::max_file_name_length) return false;
  if (name.front() == '.' || name.front() == '-') return false;
  for (const char c : name) {
    // Non-ASCII bytes are the UTF-8 letters the sanitiser keeps; storage_test
    // checks which.
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || static_cast<unsigned char>(c) >= 0x80;
    if (!safe) return false;
  }
  return sanitize_file_name(name) == name;  // UploadFile::open accepts only its own fixed points
}

}  // namespace

TEST_CASE("percent_decode: %XX in either case, everything else kept", "[percent]") {
  CHECK(percent_decode("caf%C3%A9.txt") == "caf\xC3\xA9.txt");
  CHECK(percent_decode("caf%c3%a9.txt") == "caf\xC3\xA9.txt");
  CHECK(percent_decode("a%2Fb%5cc") == "a/b\\c");
  CHECK(percent_decode("%00") == std::string(1, '\0'));
  CHECK(percent_decode("%25%2541") == "%%41");  // decoded once, not twice
  CHECK(percent_decode("") == "");
  CHECK(percent_decode("a+b") == "a+b");
  CHECK(percent_decode("a+b%2B", true) == "a b+");
}

TEST_CASE("percent_decode: a '%' without two hex digits is an error", "[percent][errors]") {
  for (const std::string bad : {"%", "%4", "a%", "a%4", "%G0", "%0G", "%zz", "%%41", "% 41"}) {
    INFO(bad);
    CHECK(percent_decode(bad) == std::nullopt);
    CHECK(percent_decode(bad, true) == std::nullopt);
  }
}

TEST_CASE("percent_encode: only RFC 3986's unreserved characters stay", "[percent]") {
  CHECK(percent_encode("caf\xC3\xA9 x/y.txt") == "caf%C3%A9%20x%2Fy.txt");
  CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
  CHECK(percent_encode(std::string(1, '\0') + "%+") == "%00%25%2B");
}

TEST_CASE("query_parameter: form-urlencoded pairs, the first match wins", "[percent][query]") {
  auto q = query_parameter("/api/v1/upload?name=caf%C3%A9.txt", "name");
  CHECK(q.found);
  CHECK(q.valid);
  CHECK(q.value == "caf\xC3\xA9.txt");
  CHECK(query_parameter("/u?a=1&name=x&name=y", "name").value == "x");
  CHECK(query_parameter("/u?name=a+b%2Bc", "name").value == "a b+c");
  CHECK(query_parameter("/u?na%6De=z", "name").value == "z");  // keys are decoded too
  CHECK(query_parameter("/u?name=v#fragment", "name").value == "v");
  CHECK(query_parameter("/u?x=%zz&name=ok", "name").value == "ok");  // a bad key is skipped
  CHECK(query_parameter("/u?names=a&xname=b&name=c", "name").value == "c");

  q = query_parameter("/u?name", "name");
  CHECK(q.found);
  CHECK(q.valid);
  CHECK(q.value.empty());
  CHECK_FALSE(query_parameter("/u", "name").found);
  CHECK_FALSE(query_parameter("/u?", "name").found);
  CHECK_FALSE(query_parameter("/u?other=1", "name").found);

  q = query_parameter("/u?name=bad%zz", "name");
  CHECK(q.found);
  CHECK_FALSE(q.valid);
  CHECK(q.value.empty());
}

TEST_CASE("decode_ext_value: RFC 8187, UTF-8 or ISO-8859-1", "[percent][ext-value]") {
  CHECK(decode_ext_value("UTF-8''caf%C3%A9.txt") == "caf\xC3\xA9.txt");
  CHECK(decode_ext_value("utf-8'fr'caf%C3%A9.txt") == "caf\xC3\xA9.txt");  // language ignored
  CHECK(decode_ext_value("ISO-8859-1''caf%E9.txt") == "caf\xC3\xA9.txt");  // to UTF-8
  CHECK(decode_ext_value("iso-8859-1''plain") == "plain");
  CHECK(decode_ext_value("UTF-8''a+b") == "a+b");  // no '+' rule in a header
  CHECK(decode_ext_value("UTF-8''") == "");
  for (const std::string bad :
       {"caf.txt", "UTF-8'caf.txt", "''caf.txt", "KOI8-R''x", "UTF-8''%zz", "UTF-8''100%"}) {
    INFO(bad);
    CHECK(decode_ext_value(bad) == std::nullopt);
  }
}

TEST_CASE("decoding round-trips whatever bytes were encoded", "[percent][property]") {
  std::mt19937 rng{3986};
  for (int round = 0; round < 2000; ++round) {
    const std::string bytes = random_bytes(rng, 40);
    const std::string encoded = percent_encode(bytes);
    INFO("round " << round << ", encoded " << encoded);
    REQUIRE(percent_decode(encoded) == bytes);
    REQUIRE(percent_decode(encoded, true) == bytes);  // an encoded '+' is %2B
    REQUIRE(query_parameter("/api/v1/upload?x=1&name=" + encoded, "name").value == bytes);
    REQUIRE(decode_ext_value("UTF-8''" + encoded) == bytes);
  }
}

TEST_CASE("whatever decodes, the sanitiser makes a safe name of it", "[percent][property]") {
  std::mt19937 rng{6266};
  int decoded = 0;
  for (int round = 0; round < 5000; ++round) {
    const std::string text = random_escaped(rng);
    INFO("round " << round << ": '" << text << "'");
    for (const std::optional<std::string>& value :
         {percent_decode(text, true), decode_ext_value("UTF-8''" + text)}) {
      if (!value) continue;
      ++decoded;
      const std::string name = sanitize_file_name(*value);
      REQUIRE(is_safe_name(name));
      // What follows the last decoded separator is all that can survive.
      const std::size_t slash = value->find_last_of("/\\");
      if (slash != std::string::npos) {
        REQUIRE(name == sanitize_file_name(value->substr(slash + 1)));
      }
    }
  }
  CHECK(decoded > 1000);  // the generator must not produce only bad escapes
}

TEST_CASE("encoded traversal and hidden names end up as plain names", "[percent][storage]") {
  const auto stored_as = [](std::string_view query_value) {
    const auto q = query_parameter("/u?name=" + std::string{query_value}, "name");
    REQUIRE(q.valid);
    return sanitize_file_name(q.value);
  };
  CHECK(stored_as("..%2F..%2Fetc%2Fpasswd") == "passwd");
  CHECK(stored_as("%2e%2e%2f%2e%2e%2fsecret") == "secret");
  CHECK(stored_as("..%5C..%5Cwin.ini") == "win.ini");
  CHECK(stored_as("%2Ehidden") == "hidden");
  CHECK(stored_as("%2F") == "upload");
  CHECK(stored_as("report%202024.txt") == "report_2024.txt");
  CHECK(stored_as("caf%C3%A9.txt") == "caf\xC3\xA9.txt");
  CHECK(stored_as("a%E2%80%AEb") == "a_b");  // U+202E: one '_' for the one character
  CHECK(stored_as("a%00b") == "a_b");
}
