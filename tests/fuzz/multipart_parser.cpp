// multipart_parser.cpp - fuzzes the streaming multipart/form-data parser
// (multipart.hpp) and boundary_from_content_type. The body of an HTTP upload
// is the client's to shape and arrives cut wherever TCP cut it: the parser
// must find the same parts whatever the cuts, never hand on a byte it was not
// given, and keep its promises about the sink.
//
// Input: a flags byte, a split plan (a count, then that many chunk lengths),
// then by the flags' low two bits the boundary: 0 "b", 1 curl's, 2 a length
// byte and the bytes of one, 3 a Content-Type line (up to a '\n') to take it
// from. The rest is the body.
//
// Properties:
//   - MultipartParser's constructor accepts exactly the RFC 2046 boundaries
//     (1 to 70 of its characters, not ending in a space), throwing
//     std::invalid_argument for the rest; boundary_from_content_type returns
//     only such boundaries, as written in the header value, and finds any in
//     a quoted boundary parameter;
//   - the body fed whole and fed in the chunks of the plan (each chunk its
//     own heap copy of exactly its size, freed after its feed, so that ASan
//     sees a read past it or a slice kept from it) gives the same parts
//     (headers, data, ends), the same status after the last feed and after
//     finish(), and the same error;
//   - the sink's calls come in the documented order, never with empty data,
//     and none after a feed returned done or error; a status, once done or
//     error, stays so; finish() is done exactly when the body was, and error()
//     says why whenever the status is error;
//   - each part's data is the bytes between its header block's blank line
//     and the next delimiter in the body, which it does not contain.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "multipart.hpp"

namespace {

using upload_server::boundary_from_content_type;
using upload_server::MultipartParser;
using upload_server::PartHeaders;
using Status = MultipartParser::Status;

constexpr std::string_view curl_boundary = "------------------------9d0829c05e132766";

// RFC 2046 5.1.1: bchars, written out from the grammar.
bool is_valid_boundary(std::string_view boundary) {
  if (boundary.empty() || boundary.size() > 70 || boundary.back() == ' ') return false;
  for (const char c : boundary) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view{"'()+_,-./:=? "}.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

struct Event {
  enum class Kind { begin, data, end };
  Kind kind;
  PartHeaders headers;  // begin
  std::string data;     // data: all of the part's bytes since the last event, concatenated

  friend bool operator==(const Event& a, const Event& b) {
    return a.kind == b.kind && a.headers.name == b.headers.name &&
           a.headers.filename == b.headers.filename &&
           a.headers.content_type == b.headers.content_type && a.data == b.data;
  }
};

// Records what the parser says, checking the order of its calls as they come.
class Recorder final : public upload_server::MultipartSink {
 public:
  std::vector<Event> events;
  bool closed = false;  // a feed returned done or error: nothing more may come

  void on_part_begin(const PartHeaders& headers) override {
    ADMIT_FUZZ_CHECK(!closed, "on_part_begin after done or error");
    ADMIT_FUZZ_CHECK(!in_part_, "on_part_begin inside a part");
    in_part_ = true;
    events.push_back({Event::Kind::begin, headers, {}});
  }
  void on_part_data(std::string_view data) override {
    ADMIT_FUZZ_CHECK(!closed, "on_part_data after done or error");
    ADMIT_FUZZ_CHECK(in_part_, "on_part_data outside a part");
    ADMIT_FUZZ_CHECK(!data.empty(), "on_part_data with no data");
    if (events.back().kind != Event::Kind::data) events.push_back({Event::Kind::data, {}, {}});
    events.back().data += data;
  }
  void on_part_end() override {
    ADMIT_FUZZ_CHECK(!closed, "on_part_end after done or error");
    ADMIT_FUZZ_CHECK(in_part_, "on_part_end outside a part");
    in_part_ = false;
    events.push_back({Event::Kind::end, {}, {}});
  }

 private:
  bool in_part_ = false;
};

struct Outcome {
  std::vector<Event> events;
  Status last = Status::need_more;  // of the last feed
  Status finished = Status::need_more;
  std::string error;
};

// Feeds `chunks` in order, checking what each status and the sink say.
Outcome parse(std::string_view boundary, const std::vector<std::string_view>& chunks) {
  MultipartParser parser{boundary};
  Recorder recorder;
  Status last = Status::need_more;
  for (const std::string_view chunk : chunks) {
    // Its own allocation of exactly its size, gone after the feed.
    const auto copy = std::make_unique<char[]>(chunk.size());
    chunk.copy(copy.get(), chunk.size());
    const Status status = parser.feed({copy.get(), chunk.size()}, recorder);
    ADMIT_FUZZ_CHECK(last == Status::need_more || status == last,
                     "a status changed after done or error");
    ADMIT_FUZZ_CHECK(parser.done() == (status == Status::done), "done() disagrees with feed()");
    ADMIT_FUZZ_CHECK(parser.error().empty() == (status != Status::error),
                     "error() is not set exactly when feed() returns error");
    last = status;
    recorder.closed = status != Status::need_more;
  }
  const Status finished = parser.finish();
  ADMIT_FUZZ_CHECK(finished == (last == Status::done ? Status::done : Status::error),
                   "finish() is not done exactly when the body was");
  ADMIT_FUZZ_CHECK(parser.error().empty() == (finished == Status::done),
                   "error() is not set exactly when finish() returns error");
  return {std::move(recorder.events), last, finished, std::string{parser.error()}};
}

// Checks each part's data against the body it came from.
void check_data_in_body(std::string_view body, std::string_view boundary,
                        const std::vector<Event>& events) {
  const std::string delimiter = "\r\n--" + std::string{boundary};
  std::size_t cursor = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].kind != Event::Kind::begin) continue;
    const bool has_data = i + 1 < events.size() && events[i + 1].kind == Event::Kind::data;
    const std::string_view data = has_data ? std::string_view{events[i + 1].data} : "";
    const bool ended = i + 1 + has_data < events.size();
    ADMIT_FUZZ_CHECK(data.find(delimiter) == std::string_view::npos,
                     "a part's data contains the delimiter");
    // Its data starts after a blank line ending a header block; an ended
    // part's data is followed by a delimiter. The first such place counts.
    std::size_t at = cursor;
    while (true) {
      at = body.find("\r\n\r\n", at);
      ADMIT_FUZZ_CHECK(at != std::string_view::npos, "a part's data is not in the body");
      at += 4;
      if (body.substr(at, data.size()) == data &&
          (!ended || body.substr(at + data.size(), delimiter.size()) == delimiter)) {
        break;
      }
      at -= 3;  // blank lines may overlap: "\r\n\r\n\r\n"
    }
    cursor = at + data.size();
  }
}

// The chunks of `body` by the plan: lengths in turn, a 0 being an empty feed.
std::vector<std::string_view> split(std::string_view body, std::string_view plan) {
  std::size_t total = 0;
  for (const char c : plan) total += static_cast<unsigned char>(c);
  std::vector<std::string_view> chunks;
  for (std::size_t k = 0; !body.empty(); ++k) {
    const std::size_t length = total == 0 ? 1 : static_cast<unsigned char>(plan[k % plan.size()]);
    chunks.push_back(body.substr(0, length));
    body.remove_prefix(chunks.back().size());
  }
  return chunks;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  const auto take = [&input](std::size_t n) {
    const std::string_view taken = input.substr(0, n);
    input.remove_prefix(taken.size());
    return taken;
  };
  const auto take_byte = [&take] {
    const std::string_view b = take(1);
    return b.empty() ? std::size_t{0} : static_cast<unsigned char>(b.front());
  };

  const std::size_t flags = take_byte();
  const std::string_view plan = take(take_byte() % 17);
  std::string boundary;
  switch (flags % 4) {
    case 0:
      boundary = "b";
      break;
    case 1:
      boundary = curl_boundary;
      break;
    case 2: {
      boundary = take(take_byte());
      const bool valid = is_valid_boundary(boundary);
      try {
        const MultipartParser parser{boundary};
        ADMIT_FUZZ_CHECK(valid, "MultipartParser accepted an invalid boundary");
      } catch (const std::invalid_argument&) {
        ADMIT_FUZZ_CHECK(!valid, "MultipartParser refused a valid boundary");
        return 0;
      }
      ADMIT_FUZZ_CHECK(boundary_from_content_type("multipart/form-data; boundary=\"" + boundary +
                                                  "\"") == boundary,
                       "boundary_from_content_type lost a quoted boundary");
      break;
    }
    default: {
      const std::string_view content_type = take(input.find('\n'));
      take(1);
      const std::optional<std::string> found = boundary_from_content_type(content_type);
      if (!found) return 0;
      ADMIT_FUZZ_CHECK(is_valid_boundary(*found),
                       "boundary_from_content_type returned an invalid boundary");
      ADMIT_FUZZ_CHECK(content_type.find(*found) != std::string_view::npos,
                       "boundary_from_content_type returned what the header does not say");
      boundary = *found;
      break;
    }
  }
  const std::string_view body = input;

  const Outcome whole = parse(boundary, {body});
  const Outcome chunked = parse(boundary, split(body, plan));
  ADMIT_FUZZ_CHECK(whole.events == chunked.events, "the parts differ when the body is split");
  ADMIT_FUZZ_CHECK(whole.last == chunked.last, "the status differs when the body is split");
  ADMIT_FUZZ_CHECK(whole.finished == chunked.finished, "finish() differs when the body is split");
  ADMIT_FUZZ_CHECK(whole.error == chunked.error, "the error differs when the body is split");
  check_data_in_body(body, boundary, whole.events);
  return 0;
}
