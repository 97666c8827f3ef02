// ws_request.cpp - fuzzes parse_upload_request (upload_request.hpp), the first
// message of a WebSocket upload: the one thing a client sends before the
// server decides anything, so any text at all must be either a request or a
// refusal, never an exception or a request that says something else than the
// JSON did.
//
// Properties, for every message the session would parse (at most
// max_upload_request_bytes):
//   - it does not throw (nothing is caught here);
//   - it agrees with a second reading of the text through nlohmann's SAX
//     interface, which sees the members one by one without building a
//     document: a request exactly when the text is one object whose last
//     "name" is a string and whose last "size" an unsigned integer, with those
//     values;
//   - an accepted size is written in the text, digit for digit, as a number
//     of its own (no size comes from a float, an exponent or a wrap);
//   - an accepted name is valid UTF-8, as upload_request.hpp promises, and the
//     request survives being written back as JSON and parsed again.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "upload_request.hpp"

namespace {

using json = nlohmann::json;
using upload_server::UploadRequest;

// What the members "name" and "size" of the top-level object were, the last
// time each was seen.
class RequestSax final : public nlohmann::json_sax<json> {
 public:
  [[nodiscard]] std::optional<UploadRequest> request() const {
    if (!top_is_object_ || !name_ || !size_) return std::nullopt;
    return UploadRequest{*name_, *size_};
  }

  bool null() override { return scalar(std::nullopt, std::nullopt); }
  bool boolean(bool /*value*/) override { return scalar(std::nullopt, std::nullopt); }
  bool number_integer(number_integer_t /*value*/) override {
    return scalar(std::nullopt, std::nullopt);
  }
  bool number_unsigned(number_unsigned_t value) override { return scalar(std::nullopt, value); }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override {
    return scalar(std::nullopt, std::nullopt);
  }
  bool string(string_t& value) override { return scalar(value, std::nullopt); }
  bool binary(binary_t& /*value*/) override { return scalar(std::nullopt, std::nullopt); }
  bool start_object(std::size_t /*elements*/) override {
    if (depth_ == 0) top_is_object_ = true;
    container();
    return true;
  }
  bool key(string_t& name) override {
    if (depth_ == 1) key_ = name;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    container();
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) override {
    return false;
  }

 private:
  // A value at depth 1 is a member of the top-level object; a container
  // there is a member too, of a type that is neither a string nor a number.
  void member(const std::optional<std::string>& string, std::optional<std::uint64_t> number) {
    if (depth_ != 1) return;
    if (key_ == "name") name_ = string;
    if (key_ == "size") size_ = number;
  }
  bool scalar(const std::optional<std::string>& string, std::optional<std::uint64_t> number) {
    member(string, number);
    return true;
  }
  void container() {
    member(std::nullopt, std::nullopt);
    ++depth_;
  }

  std::size_t depth_ = 0;
  bool top_is_object_ = false;
  std::string key_;
  std::optional<std::string> name_;
  std::optional<std::uint64_t> size_;
};

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
}

// Whether `digits` occurs in `text` with no other character of a number on
// either side.
bool has_number(std::string_view text, std::string_view digits) {
  for (std::size_t at = text.find(digits); at != std::string_view::npos;
       at = text.find(digits, at + 1)) {
    const std::size_t end = at + digits.size();
    if ((at == 0 || !is_number_char(text[at - 1])) &&
        (end == text.size() || !is_number_char(text[end]))) {
      return true;
    }
  }
  return false;
}

// RFC 3629: shortest forms only, no surrogates, nothing past U+10FFFF.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    std::uint32_t code_point = 0;
    std::uint32_t smallest = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    if ((lead & 0xe0) == 0xc0) {
      length = 2, code_point = lead & 0x1fU, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, code_point = lead & 0x0fU, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, code_point = lead & 0x07U, smallest = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      code_point = (code_point << 6) | (c & 0x3fU);
    }
    if (code_point < smallest || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

bool same(const std::optional<UploadRequest>& a, const std::optional<UploadRequest>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->name == b->name && a->size == b->size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The session refuses a longer message before parsing it.
  if (size > upload_server::max_upload_request_bytes) return 0;
  const std::string_view text{reinterpret_cast<const char*>(data), size};

  const std::optional<UploadRequest> request = upload_server::parse_upload_request(text);

  RequestSax sax;
  const bool well_formed = json::sax_parse(text, &sax);
  ADMIT_FUZZ_CHECK(same(request, well_formed ? sax.request() : std::nullopt),
                   "parse_upload_request disagrees with a SAX reading of the same JSON");
  if (!request) return 0;

  ADMIT_FUZZ_CHECK(has_number(text, std::to_string(request->size)),
                   "an accepted size is not written as such in the message");
  ADMIT_FUZZ_CHECK(is_utf8(request->name), "an accepted name is not valid UTF-8");
  const std::string again = json{{"name", request->name}, {"size", request->size}}.dump();
  ADMIT_FUZZ_CHECK(same(upload_server::parse_upload_request(again), request),
                   "an accepted request, written back as JSON, does not parse the same");
  return 0;
}
