// multipart.cpp - the delimiter scan, the state machine around it, and the
// header parsing (Content-Type, Content-Disposition) it needs.
#include "multipart.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

#include "percent_encoding.hpp"

namespace upload_server {
namespace {

constexpr std::string_view crlf = "\r\n";

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 2046 5.1.1: 1 to 70 of these, not ending in a space. No CR among them is
// what lets the delimiter scan restart only at a CR.
bool is_valid_boundary(std::string_view boundary) {
  constexpr std::string_view allowed =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ";
  return !boundary.empty() && boundary.size() <= 70 && boundary.back() != ' ' &&
         boundary.find_first_not_of(allowed) == std::string_view::npos;
}

struct Parameter {
  std::string name;
  std::string value;
};

// The value of a quoted-string starting after its opening quote at `text[i]`;
// `i` ends past the closing quote. A backslash escapes only '"' and '\':
// RFC 7230 lets it escape anything, but browsers send Windows paths such as
// "C:\x\y.zip" unescaped, and reading those as escapes would lose the
// separators that sanitize_file_name needs to find the base name.
std::optional<std::string> quoted_string(std::string_view text, std::size_t& i) {
  std::string value;
  while (i < text.size()) {
    const char c = text[i++];
    if (c == '"') return value;
    if (c == '\\' && i < text.size() && (text[i] == '"' || text[i] == '\\')) {
      value += text[i++];
    } else {
      value += c;
    }
  }
  return std::nullopt;  // no closing quote
}

// `text` is everything after a header value's first item ("form-data",
// "multipart/form-data"): *( OWS ";" OWS name "=" (token / quoted-string) ).
// Names are lowercased. nullopt if malformed.
std::optional<std::vector<Parameter>> parse_parameters(std::string_view text) {
  std::vector<Parameter> parameters;
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < text.size() && is_space(text[i])) ++i;
  };
  const auto token_end = [&](std::string_view stops) {
    while (i < text.size() && !is_space(text[i]) && stops.find(text[i]) == stops.npos) ++i;
  };
  while (true) {
    skip_space();
    if (i == text.size()) return parameters;
    if (text[i++] != ';') return std::nullopt;
    skip_space();
    if (i == text.size()) return parameters;  // a trailing ';' is harmless
    Parameter parameter;
    const std::size_t name_begin = i;
    token_end(";=");
    for (const char c : text.substr(name_begin, i - name_begin)) {
      parameter.name += ascii_lower(c);
    }
    skip_space();
    if (parameter.name.empty() || i == text.size() || text[i++] != '=') return std::nullopt;
    skip_space();
    if (i < text.size() && text[i] == '"') {
      ++i;
      std::optional<std::string> value = quoted_string(text, i);
      if (!value) return std::nullopt;
      parameter.value = std::move(*value);
    } else {
      const std::size_t value_begin = i;
      token_end(";");
      parameter.value = text.substr(value_begin, i - value_begin);
    }
    parameters.push_back(std::move(parameter));
  }
}

const Parameter* find_parameter(const std::vector<Parameter>& parameters, std::string_view name) {
  for (const Parameter& p : parameters) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// Splits "type; parameters" at the first ';'.
std::pair<std::string_view, std::string_view> split_value(std::string_view value) {
  const std::size_t semicolon = value.find(';');
  if (semicolon == std::string_view::npos) return {trim(value), {}};
  return {trim(value.substr(0, semicolon)), value.substr(semicolon)};
}

// Fills `out` from a header block ending in its blank line. Returns why the
// block is unacceptable, or an empty view.
std::string_view parse_part_headers(std::string_view block, PartHeaders& out) {
  bool has_disposition = false;
  while (true) {
    const std::size_t end = block.find(crlf);  // the block ends in CRLF, so found
    const std::string_view line = block.substr(0, end);
    block.remove_prefix(end + crlf.size());
    if (line.empty()) break;  // the blank line that ends the block
    if (is_space(line.front())) return "folded part header lines are not supported";
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "a part header line has no ':'";
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Type")) {
      out.content_type = value;
    } else if (iequals(name, "Content-Disposition")) {
      const auto [type, rest] = split_value(value);
      if (!iequals(type, "form-data")) return "a part's Content-Disposition is not form-data";
      const std::optional<std::vector<Parameter>> parameters = parse_parameters(rest);
      if (!parameters) return "a part's Content-Disposition parameters are malformed";
      const Parameter* field = find_parameter(*parameters, "name");
      if (field == nullptr) return "a part's Content-Disposition has no name";
      out.name = field->value;
      // RFC 6266 4.3: filename* (RFC 8187, able to carry any character) wins
      // over filename, which clients send alongside it for older servers.
      // RFC 7578 4.2 tells senders not to use filename* in a form, but some
      // do, and refusing their upload helps nobody.
      if (const Parameter* ext = find_parameter(*parameters, "filename*"); ext != nullptr) {
        std::optional<std::string> decoded = decode_ext_value(ext->value);
        if (!decoded) return "a part's filename* is not a valid RFC 8187 value (UTF-8''%XX...)";
        out.filename = std::move(*decoded);
      } else {
        const Parameter* filename = find_parameter(*parameters, "filename");
        out.filename = filename != nullptr ? filename->value : std::string{};
      }
      has_disposition = true;
    }
    // Other headers (Content-Transfer-Encoding is deprecated by RFC 7578) are ignored.
  }
  return has_disposition ? std::string_view{} : "a part has no Content-Disposition header";
}

}  // namespace

std::optional<std::string> boundary_from_content_type(std::string_view content_type) {
  const auto [media_type, rest] = split_value(content_type);
  if (!iequals(media_type, "multipart/form-data")) return std::nullopt;
  const std::optional<std::vector<Parameter>> parameters = parse_parameters(rest);
  if (!parameters) return std::nullopt;
  const Parameter* boundary = find_parameter(*parameters, "boundary");
  if (boundary == nullptr || !is_valid_boundary(boundary->value)) return std::nullopt;
  return boundary->value;
}

MultipartParser::MultipartParser(std::string_view boundary)
    : delimiter_{"\r\n--" + std::string{boundary}} {
  if (!is_valid_boundary(boundary)) {
    throw std::invalid_argument("MultipartParser: invalid boundary '" + std::string{boundary} +
                                "'");
  }
}

MultipartParser::Status MultipartParser::feed(std::string_view chunk, MultipartSink& sink) {
  std::size_t pos = 0;
  while (pos < chunk.size() && state_ != State::done && state_ != State::error) {
    switch (state_) {
      case State::data:
        pos = scan_data(chunk, pos, sink);
        break;
      case State::headers:
        pos = read_headers(chunk, pos, sink);
        break;
      default:
        step_after_delimiter(chunk[pos++]);
        break;
    }
  }
  return status();
}

MultipartParser::Status MultipartParser::finish() noexcept {
  if (state_ != State::done && state_ != State::error) {
    fail("truncated: the body ended before the closing boundary delimiter");
  }
  return status();
}

// Hands data on from `pos` up to the next delimiter or the chunk's end, and
// returns where it stopped: just past a delimiter, or at the end.
std::size_t MultipartParser::scan_data(std::string_view chunk, std::size_t pos,
                                       MultipartSink& sink) {
  const std::string_view delimiter = delimiter_;
  // How far the delimiter matches `chunk` from `at`, given `matched` bytes already.
  const auto extend_match = [&](std::size_t at, std::size_t matched) {
    while (at < chunk.size() && matched < delimiter.size() && chunk[at] == delimiter[matched]) {
      ++at;
      ++matched;
    }
    return matched;
  };

  std::size_t run = pos;  // first byte of data not yet handed on
  if (matched_ > 0) {     // the previous chunk ended with part of a delimiter
    const std::size_t matched = extend_match(pos, matched_);
    pos += matched - matched_;
    if (matched == delimiter.size()) {
      matched_ = 0;
      on_delimiter(sink);
      return pos;
    }
    if (pos == chunk.size()) {
      matched_ = matched;
      return pos;
    }
    // Not a delimiter after all. The bytes carried over were data: they are
    // the delimiter's own prefix, so hand them on from there. The bytes that
    // matched in this chunk stay in the run.
    emit(delimiter.substr(0, matched_), sink);
    matched_ = 0;
  }
  while (true) {
    const std::size_t cr = chunk.find('\r', pos);
    if (cr == std::string_view::npos) {
      emit(chunk.substr(run), sink);
      return chunk.size();
    }
    const std::size_t matched = extend_match(cr, 0);
    if (matched == delimiter.size() || cr + matched == chunk.size()) {
      emit(chunk.substr(run, cr - run), sink);
      if (matched < delimiter.size()) {  // a prefix at the very end: decide next chunk
        matched_ = matched;
        return chunk.size();
      }
      on_delimiter(sink);
      return cr + matched;
    }
    pos = cr + matched;  // the mismatching byte may itself be a CR: look again from it
  }
}

void MultipartParser::on_delimiter(MultipartSink& sink) {
  if (in_part_) {
    in_part_ = false;
    sink.on_part_end();
  }
  state_ = State::after_delimiter;
}

void MultipartParser::step_after_delimiter(char c) {
  switch (state_) {
    case State::after_delimiter:
      if (c == '-') {
        state_ = State::close_dash;
        return;
      }
      [[fallthrough]];
    case State::padding:
      if (is_space(c)) {
        state_ = State::padding;
      } else if (c == '\r') {
        state_ = State::line_feed;
      } else {
        fail("unexpected bytes after a boundary delimiter");
      }
      return;
    case State::line_feed:
      if (c != '\n') return fail("a boundary delimiter's CR is not followed by LF");
      header_block_.clear();
      state_ = State::headers;
      return;
    case State::close_dash:
      if (c != '-') return fail("unexpected bytes after a boundary delimiter");
      if (!seen_part_) return fail("the body has no parts");
      state_ = State::done;
      return;
    default:
      return;
  }
}

// Collects the header block byte by byte (it is small and capped) until its
// blank line, then starts the part. Returns where the part's data begins.
std::size_t MultipartParser::read_headers(std::string_view chunk, std::size_t pos,
                                          MultipartSink& sink) {
  while (pos < chunk.size()) {
    header_block_ += chunk[pos++];
    if (header_block_.size() > max_header_bytes) {
      fail("a part's header block is larger than 8 KiB");
      return pos;
    }
    const std::string_view block = header_block_;
    if (block == crlf || block.ends_with("\r\n\r\n")) {
      PartHeaders headers;
      if (const std::string_view problem = parse_part_headers(block, headers); !problem.empty()) {
        fail(problem);
        return pos;
      }
      state_ = State::data;
      in_part_ = true;
      seen_part_ = true;
      sink.on_part_begin(headers);
      return pos;
    }
  }
  return pos;
}

void MultipartParser::emit(std::string_view data, MultipartSink& sink) {
  if (in_part_ && !data.empty()) sink.on_part_data(data);
}

void MultipartParser::fail(std::string_view message) noexcept {
  state_ = State::error;
  error_ = message;
}

MultipartParser::Status MultipartParser::status() const noexcept {
  switch (state_) {
    case State::done:
      return Status::done;
    case State::error:
      return Status::error;
    default:
      return Status::need_more;
  }
}

}  // namespace upload_server
