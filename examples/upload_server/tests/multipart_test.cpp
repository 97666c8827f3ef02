// Tests for multipart.hpp: bodies curl really sent (fixtures/, see capture.py),
// fed whole, byte by byte, split at every point and in random chunks, plus the
// malformed bodies and Content-Type values a server must refuse.
#include "multipart.hpp"

#include <cstddef>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using upload_server::boundary_from_content_type;
using upload_server::MultipartParser;
using upload_server::PartHeaders;
using Status = MultipartParser::Status;

namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream in{std::string{UPLOAD_SERVER_FIXTURES} + "/" + name, std::ios::binary};
  if (!in) throw std::runtime_error("cannot read fixture " + name);
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

struct Part {
  PartHeaders headers;
  std::string data;
  bool ended = false;
};

// Records the parts, and any call out of the documented order (checked once at
// the end, not with an assertion per call: some tests make thousands of calls).
class RecordingSink final : public upload_server::MultipartSink {
 public:
  std::vector<Part> parts;
  std::vector<std::string_view> slices;  // every on_part_data argument
  bool out_of_order = false;

  void on_part_begin(const PartHeaders& headers) override {
    out_of_order |= !parts.empty() && !parts.back().ended;
    parts.push_back({headers, {}, false});
  }
  void on_part_data(std::string_view data) override {
    out_of_order |= parts.empty() || parts.back().ended || data.empty();
    if (!parts.empty()) parts.back().data += data;
    slices.push_back(data);
  }
  void on_part_end() override {
    out_of_order |= parts.empty() || parts.back().ended;
    if (!parts.empty()) parts.back().ended = true;
  }
};

struct Parsed {
  Status status;  // after finish()
  std::string error;
  std::vector<Part> parts;
  bool out_of_order;
};

Parsed parse(const std::string& boundary, const std::vector<std::string_view>& chunks) {
  MultipartParser parser{boundary};
  RecordingSink sink;
  for (const std::string_view chunk : chunks) (void)parser.feed(chunk, sink);
  const Status status = parser.finish();
  return {status, std::string{parser.error()}, std::move(sink.parts), sink.out_of_order};
}

Parsed parse(const std::string& boundary, std::string_view body) {
  return parse(boundary, std::vector<std::string_view>{body});
}

// A body whose first part has `headers` (CRLF-terminated lines) and `data`.
std::string one_part(std::string_view headers, std::string_view data) {
  return "--b\r\n" + std::string{headers} + "\r\n" + std::string{data} + "\r\n--b--\r\n";
}

// A capture: its boundary, body and what the file part must come out as.
struct Capture {
  std::string boundary;
  std::string body;
  std::string file;
};

Capture load(const std::string& name) {
  std::string content_type = read_fixture(name + ".content_type");
  while (!content_type.empty() && (content_type.back() == '\n' || content_type.back() == '\r')) {
    content_type.pop_back();
  }
  const std::optional<std::string> boundary = boundary_from_content_type(content_type);
  if (!boundary) throw std::runtime_error("no boundary in " + name + ".content_type");
  return {*boundary, read_fixture(name + ".body"), read_fixture("test_file.zip")};
}

// The single-file capture parsed as expected; returns what is wrong, or "".
std::string check_file_form(const Parsed& p, const Capture& capture) {
  if (p.status != Status::done) return "status: " + p.error;
  if (p.out_of_order) return "sink calls out of order";
  if (p.parts.size() != 1) return std::to_string(p.parts.size()) + " parts";
  const Part& file = p.parts[0];
  if (file.headers.name != "file" || file.headers.filename != "test_file.zip" ||
      file.headers.content_type != "application/octet-stream") {
    return "headers";
  }
  if (!file.ended) return "part not ended";
  if (file.data != capture.file) return "data differs from test_file.zip";
  return "";
}

}  // namespace

TEST_CASE("curl's upload parses whole, with the file's bytes handed out as slices of the chunk",
          "[multipart][curl]") {
  const Capture capture = load("curl_form");
  REQUIRE(capture.boundary.size() == 40);  // curl: 24 dashes and 16 hex digits
  MultipartParser parser{capture.boundary};
  RecordingSink sink;
  REQUIRE(parser.feed(capture.body, sink) == Status::done);
  CHECK(parser.done());
  CHECK(parser.error().empty());
  CHECK(check_file_form({parser.finish(), "", sink.parts, sink.out_of_order}, capture).empty());
  // Zero-copy: one call, pointing into the body itself.
  REQUIRE(sink.slices.size() == 1);
  CHECK(sink.slices[0].data() > capture.body.data());
  CHECK(sink.slices[0].data() + sink.slices[0].size() < capture.body.data() + capture.body.size());
}

TEST_CASE("curl's upload parses byte by byte", "[multipart][curl]") {
  const Capture capture = load("curl_form");
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < capture.body.size(); ++i) {
    bytes.push_back(std::string_view{capture.body}.substr(i, 1));
  }
  CHECK(check_file_form(parse(capture.boundary, bytes), capture).empty());
}

TEST_CASE("curl's upload parses when split into two chunks at every point", "[multipart][curl]") {
  const Capture capture = load("curl_form");
  const std::string_view body = capture.body;
  std::vector<std::string> failures;  // the first few, enough to debug
  for (std::size_t at = 0; at <= body.size(); ++at) {
    const std::string problem =
        check_file_form(parse(capture.boundary, {body.substr(0, at), body.substr(at)}), capture);
    if (!problem.empty() && failures.size() < 10) {
      failures.push_back("split at " + std::to_string(at) + ": " + problem);
    }
  }
  CHECK(failures == std::vector<std::string>{});
}

TEST_CASE("curl's upload parses in random chunkings", "[multipart][curl]") {
  const Capture capture = load("curl_form");
  const std::string_view body = capture.body;
  std::mt19937 rng{7578};
  for (int round = 0; round < 500; ++round) {
    // Small chunks most of the time, so that many boundaries fall inside delimiters.
    const std::size_t max_chunk = round % 2 == 0 ? 8 : 600;
    std::uniform_int_distribution<std::size_t> size{1, max_chunk};
    std::vector<std::string_view> chunks;
    for (std::size_t at = 0; at < body.size();) {
      chunks.push_back(body.substr(at, size(rng)));
      at += chunks.back().size();
    }
    INFO("round " << round);
    REQUIRE(check_file_form(parse(capture.boundary, chunks), capture).empty());
  }
}

TEST_CASE("curl's two-field form gives both parts, in order, at every split", "[multipart][curl]") {
  const Capture capture = load("curl_two_fields");
  const std::string_view body = capture.body;
  std::vector<std::size_t> failed_splits;
  for (std::size_t at = 0; at <= body.size(); ++at) {
    const Parsed p = parse(capture.boundary, {body.substr(0, at), body.substr(at)});
    const bool ok =
        p.status == Status::done && !p.out_of_order && p.parts.size() == 2 &&
        p.parts[0].headers.name == "note" && p.parts[0].headers.filename.empty() &&
        p.parts[0].headers.content_type.empty() && p.parts[0].data == "hello" &&
        p.parts[1].headers.name == "file" && p.parts[1].headers.filename == "test_file.zip" &&
        p.parts[1].headers.content_type == "application/zip" && p.parts[1].data == capture.file;
    if (!ok) failed_splits.push_back(at);
  }
  CHECK(failed_splits == std::vector<std::size_t>{});
}

namespace {

// Part data made of near-delimiters: every proper prefix of "\r\n--" +
// boundary, each broken by a byte that is not the next one (some by a CR,
// which may start the real delimiter), then the real one.
std::string near_delimiters(const std::string& boundary) {
  const std::string delimiter = "\r\n--" + boundary;
  std::string data;
  for (std::size_t n = 1; n < delimiter.size(); ++n) {
    data += delimiter.substr(0, n);
    data += n % 2 == 0 ? '\r' : 'x';
  }
  return data;
}

}  // namespace

TEST_CASE("a delimiter split across feeds at every position, after near misses, is found",
          "[multipart]") {
  const std::string boundary = "------------------------d41d8cd98f00b204";  // as curl's
  const std::string data = near_delimiters(boundary) + std::string(3000, '\0');
  const std::string body =
      "--" + boundary + "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n" +
      data + "\r\n--" + boundary + "--\r\n";
  const std::string_view view = body;
  // Two feeds cut at every point, then three with a middle feed of 1 to 50
  // bytes: a delimiter then spans three feeds.
  std::vector<std::string> failures;
  const auto check = [&](const std::vector<std::string_view>& chunks, std::string_view what) {
    const Parsed p = parse(boundary, chunks);
    if ((p.status != Status::done || p.out_of_order || p.parts.size() != 1 ||
         p.parts[0].data != data) &&
        failures.size() < 10) {
      failures.push_back(std::string{what} + ": " + p.error);
    }
  };
  for (std::size_t at = 0; at <= view.size(); ++at) {
    check({view.substr(0, at), view.substr(at)}, "split at " + std::to_string(at));
  }
  for (std::size_t at = 0; at < view.size(); at += 7) {
    for (std::size_t middle = 1; middle <= 50 && at + middle <= view.size(); ++middle) {
      check({view.substr(0, at), view.substr(at, middle), view.substr(at + middle)},
            "split at " + std::to_string(at) + " + " + std::to_string(middle));
    }
  }
  CHECK(failures == std::vector<std::string>{});
}

TEST_CASE("a large part fed whole is handed on in one slice, near misses and all", "[multipart]") {
  // One call for the whole part: the sink writes each slice with a system
  // call, so a parser that cut the data at every CR would cost one per CR.
  const std::string boundary = "b0undary";
  std::string data;
  while (data.size() < (1u << 20)) data += near_delimiters(boundary) + std::string(1000, 'y');
  const std::string body = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + data +
                           "\r\n--" + boundary + "--";
  MultipartParser parser{boundary};
  RecordingSink sink;
  REQUIRE(parser.feed(body, sink) == Status::done);
  REQUIRE(sink.parts.size() == 1);
  CHECK(sink.parts[0].data == data);
  CHECK(sink.slices.size() == 1);
}

TEST_CASE("a body cut anywhere before its closing delimiter is truncated", "[multipart][errors]") {
  const Capture capture = load("curl_form");
  const std::string_view body = capture.body;
  // The closing delimiter's "--" ends two bytes (its CRLF) before the body does.
  const std::size_t complete = body.size() - 2;
  std::vector<std::size_t> wrong;
  for (std::size_t cut = 0; cut < body.size(); ++cut) {
    MultipartParser parser{capture.boundary};
    RecordingSink sink;
    const Status fed = parser.feed(body.substr(0, cut), sink);
    const Status finished = parser.finish();
    const bool ok = cut < complete ? fed == Status::need_more && finished == Status::error &&
                                         parser.error().starts_with("truncated")
                                   : fed == Status::done && finished == Status::done;
    if (!ok) wrong.push_back(cut);
  }
  CHECK(wrong == std::vector<std::size_t>{});
}

TEST_CASE("the closing delimiter is required, the epilogue is ignored", "[multipart]") {
  SECTION("a part without a closing delimiter is truncated") {
    const Parsed p =
        parse("b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n");
    CHECK(p.status == Status::error);
    CHECK(p.error.starts_with("truncated"));
    REQUIRE(p.parts.size() == 1);
    CHECK_FALSE(p.parts[0].ended);
  }
  SECTION("after the closing delimiter anything goes, even across feeds") {
    MultipartParser parser{"b"};
    RecordingSink sink;
    CHECK(parser.feed(one_part("Content-Disposition: form-data; name=\"a\"\r\n", "x") + "junk",
                      sink) == Status::done);
    CHECK(parser.feed("\r\n--b\r\nmore junk", sink) == Status::done);
    CHECK(sink.parts.size() == 1);
  }
  SECTION("a body with no parts at all is refused") {
    const Parsed p = parse("b", "--b--\r\n");
    CHECK(p.status == Status::error);
    CHECK(p.error == "the body has no parts");
  }
}

TEST_CASE("after a delimiter only '--', transport padding and CRLF may follow",
          "[multipart][errors]") {
  const std::string part = "Content-Disposition: form-data; name=\"a\"\r\n\r\nx";
  CHECK(parse("b", "--b \t \r\n" + part + "\r\n--b\t--\r\n").status == Status::error);
  CHECK(parse("b", "--b \t \r\n" + part + "\r\n--b  \r\n" + part + "\r\n--b--").status ==
        Status::done);
  for (const std::string bad : {"--bX\r\n", "--b-x", "--b\rX", "--b \n", "--b\n"}) {
    INFO(bad);
    const Parsed p = parse("b", bad + part + "\r\n--b--");
    CHECK(p.status == Status::error);
    CHECK(p.parts.empty());
  }
  // The boundary inside part data is a delimiter (RFC 2046 forbids it there), so
  // what follows it must be valid.
  const Parsed inside =
      parse("b", one_part("Content-Disposition: form-data; name=\"a\"\r\n", "left\r\n--bright"));
  CHECK(inside.status == Status::error);
  CHECK(inside.error == "unexpected bytes after a boundary delimiter");
}

TEST_CASE("a preamble is skipped, and near-delimiters are data", "[multipart]") {
  const std::string body =
      "preamble --b\r\n-b\r\n--\r\n--c\r\n--b\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
      "\r\n--\r\n--c--b\r\r\n-\r\n--\r\r\n--\r\n--b\r\n"  // a false start runs into the delimiter
      "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
      "\r\n--b--";
  const Parsed p = parse("b", body);
  REQUIRE(p.status == Status::done);
  REQUIRE(p.parts.size() == 2);
  CHECK(p.parts[0].data == "\r\n--\r\n--c--b\r\r\n-\r\n--\r\r\n--");
  CHECK(p.parts[1].headers.name == "empty");
  CHECK(p.parts[1].data.empty());
  CHECK_FALSE(p.out_of_order);
}

TEST_CASE("part headers: Content-Disposition and Content-Type, in any case",
          "[multipart][headers]") {
  const auto headers_of = [](std::string_view lines) {
    const Parsed p = parse("b", one_part(lines, "x"));
    REQUIRE(p.status == Status::done);
    REQUIRE(p.parts.size() == 1);
    return p.parts[0].headers;
  };
  PartHeaders h = headers_of(
      "content-disposition: FORM-DATA; NAME=field; FileName=\"say \\\"hi\\\".txt\"\r\n"
      "CONTENT-TYPE:  text/plain; charset=utf-8 \r\n"
      "X-Other: ignored\r\n");
  CHECK(h.name == "field");
  CHECK(h.filename == "say \"hi\".txt");
  CHECK(h.content_type == "text/plain; charset=utf-8");
  // Browsers send Windows paths with bare backslashes: they are kept.
  h = headers_of("Content-Disposition: form-data; name=\"f\"; filename=\"C:\\x\\y.zip\"\r\n");
  CHECK(h.filename == "C:\\x\\y.zip");
  h = headers_of("Content-Disposition: form-data;name=\"a;b=c\" ; filename = \"\\\\srv\"\r\n");
  CHECK(h.name == "a;b=c");
  CHECK(h.filename == "\\srv");
}

TEST_CASE("filename*: RFC 8187, decoded, and taking precedence over filename",
          "[multipart][headers]") {
  const auto filename_of = [](std::string_view lines) {
    const Parsed p = parse("b", one_part(lines, "x"));
    REQUIRE(p.status == Status::done);
    REQUIRE(p.parts.size() == 1);
    return p.parts[0].headers.filename;
  };
  CHECK(filename_of(
            "Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''caf%C3%A9.txt\r\n") ==
        "caf\xC3\xA9.txt");
  // Both, as RFC 6266 suggests senders do: the ext-value wins, in either order.
  CHECK(filename_of("Content-Disposition: form-data; name=\"f\"; filename=\"cafe.txt\"; "
                    "filename*=UTF-8''caf%C3%A9.txt\r\n") == "caf\xC3\xA9.txt");
  CHECK(filename_of("Content-Disposition: form-data; name=\"f\"; FILENAME*=utf-8'en'a%20b.txt; "
                    "filename=\"a b.txt\"\r\n") == "a b.txt");
  CHECK(filename_of("Content-Disposition: form-data; name=\"f\"; "
                    "filename*=iso-8859-1''na%EFve.txt\r\n") == "na\xC3\xAFve.txt");
  // Decoded, not sanitised: that is for storage.
  CHECK(filename_of("Content-Disposition: form-data; name=\"f\"; "
                    "filename*=UTF-8''..%2F..%2Fetc%2Fpasswd\r\n") == "../../etc/passwd");
}

TEST_CASE("a bad filename* is refused, not stored under some other name",
          "[multipart][headers][errors]") {
  for (const std::string value :
       {"UTF-8''bad%zz.txt", "UTF-8''100%", "caf%C3%A9.txt", "KOI8-R''x.txt", "UTF-8'x.txt"}) {
    INFO(value);
    const Parsed p =
        parse("b", one_part("Content-Disposition: form-data; name=\"f\"; filename=\"ok.txt\"; "
                            "filename*=" +
                                value + "\r\n",
                            "x"));
    CHECK(p.status == Status::error);
    CHECK(p.error == "a part's filename* is not a valid RFC 8187 value (UTF-8''%XX...)");
    CHECK(p.parts.empty());
  }
}

TEST_CASE("malformed part headers are refused", "[multipart][headers][errors]") {
  const auto error_of = [](std::string_view lines) {
    const Parsed p = parse("b", one_part(lines, "x"));
    CHECK(p.status == Status::error);
    CHECK(p.parts.empty());
    return p.error;
  };
  CHECK(error_of("") == "a part has no Content-Disposition header");
  CHECK(error_of("Content-Type: text/plain\r\n") == "a part has no Content-Disposition header");
  CHECK(error_of("Content-Disposition: attachment; name=\"a\"\r\n") ==
        "a part's Content-Disposition is not form-data");
  CHECK(error_of("Content-Disposition: form-data; filename=\"a\"\r\n") ==
        "a part's Content-Disposition has no name");
  CHECK(error_of("Content-Disposition: form-data; name=\"a\r\n") ==
        "a part's Content-Disposition parameters are malformed");
  CHECK(error_of("Content-Disposition: form-data; name\r\n") ==
        "a part's Content-Disposition parameters are malformed");
  CHECK(error_of("Content-Disposition: form-data; name=\"a\"\r\n X: folded\r\n") ==
        "folded part header lines are not supported");
  CHECK(error_of("Content-Disposition form-data\r\n") == "a part header line has no ':'");
}

TEST_CASE("a part's header block may be 8 KiB, not more", "[multipart][headers][errors]") {
  const std::string disposition = "Content-Disposition: form-data; name=\"a\"\r\n";
  // The block is the header lines plus the blank line that ends it.
  const auto block_of_size = [&](std::size_t size) {
    const std::size_t padding = size - disposition.size() - std::string_view{"X: \r\n\r\n"}.size();
    return disposition + "X: " + std::string(padding, 'p') + "\r\n";
  };
  const Parsed fits = parse("b", one_part(block_of_size(MultipartParser::max_header_bytes), "x"));
  CHECK(fits.status == Status::done);
  const Parsed over =
      parse("b", one_part(block_of_size(MultipartParser::max_header_bytes + 1), "x"));
  CHECK(over.status == Status::error);
  CHECK(over.error == "a part's header block is larger than 8 KiB");
  // Without a blank line, the parser gives up at the cap instead of buffering on.
  MultipartParser parser{"b"};
  RecordingSink sink;
  CHECK(parser.feed("--b\r\n" + std::string(MultipartParser::max_header_bytes, 'h'), sink) ==
        Status::need_more);
  CHECK(parser.feed("h", sink) == Status::error);
  CHECK(parser.feed("more", sink) == Status::error);  // errors stick
}

TEST_CASE("boundary_from_content_type: quoted or not, case-insensitive, validated",
          "[multipart][content-type]") {
  CHECK(boundary_from_content_type("multipart/form-data; boundary=abc") == "abc");
  CHECK(boundary_from_content_type("Multipart/Form-Data; BOUNDARY=abc") == "abc");
  CHECK(boundary_from_content_type("multipart/form-data;boundary=\"a b:c?\"") == "a b:c?");
  CHECK(boundary_from_content_type("multipart/form-data ; charset=utf-8; boundary = abc ;") ==
        "abc");
  CHECK(boundary_from_content_type("multipart/form-data; boundary=" + std::string(70, 'x')) ==
        std::string(70, 'x'));
  const std::vector<std::string> invalid{
      "multipart/form-data; boundary=" + std::string(71, 'x'),  // RFC 2046: at most 70
      "multipart/form-data",
      "multipart/form-data; boundary=",
      "multipart/form-data; boundary=\"\"",
      "multipart/form-data; boundary=\"abc",      // unterminated quote
      "multipart/form-data; boundary=\"abc \"",   // may not end in a space
      "multipart/form-data; boundary=\"q\\\"\"",  // '"' is not a boundary character
      "multipart/form-data; boundary=a@b",
      "multipart/mixed; boundary=abc",
      "text/plain; boundary=abc",
      "multipart/form-data; charset=utf-8",
      "multipart/form-data boundary=abc",
      "",
  };
  for (const std::string& bad : invalid) {
    INFO(bad);
    CHECK(boundary_from_content_type(bad) == std::nullopt);
  }
}

TEST_CASE("MultipartParser refuses an invalid boundary", "[multipart][content-type]") {
  CHECK(admit_test::invalid_argument_message([] { MultipartParser parser{""}; }) ==
        "MultipartParser: invalid boundary ''");
  CHECK(admit_test::invalid_argument_message([] { MultipartParser parser{"a\r\nb"}; }) ==
        "MultipartParser: invalid boundary 'a\r\nb'");
  CHECK(admit_test::invalid_argument_message([] {
          MultipartParser parser{std::string(71, 'x')};
        }).starts_with("MultipartParser: invalid boundary"));
}
