// Tests for http_replies.hpp and body_limit.hpp: every HTTP answer has the
// documented status, headers and JSON fields, and the one body limit gives
// the same verdict to every upload path.
#include "http_replies.hpp"

#include <admit/units.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <limits>

#include "body_limit.hpp"
#include "catch.hpp"
#include "upload_page.hpp"

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using upload_server::Options;
using upload_server::Reply;
using upload_server::Stored;

namespace {

nlohmann::json json_of(const Reply& reply) {
  CHECK(reply.content_type == "application/json");
  return nlohmann::json::parse(reply.body);
}

// The shape of every error answer: "error" and a non-empty "message".
void check_error(const Reply& reply, http::status status, std::string_view error) {
  CHECK(reply.status == status);
  CHECK_FALSE(reply.keep_alive);
  const nlohmann::json body = json_of(reply);
  CHECK(body.at("error") == error);
  CHECK_FALSE(body.at("message").get<std::string>().empty());
}

}  // namespace

TEST_CASE("status codes: 405 with Allow, 414, 426 with Upgrade, 431", "[http_replies]") {
  Reply reply = upload_server::method_not_allowed("GET, HEAD");
  check_error(reply, http::status::method_not_allowed, "method_not_allowed");
  CHECK(reply.allow == "GET, HEAD");

  reply = upload_server::upgrade_required();
  check_error(reply, http::status::upgrade_required, "upgrade_required");
  CHECK(reply.upgrade == "websocket");
  CHECK(reply.allow.empty());

  check_error(upload_server::target_too_long(), http::status::uri_too_long, "uri_too_long");
  check_error(upload_server::head_too_large(), http::status::request_header_fields_too_large,
              "request_header_fields_too_large");
  check_error(upload_server::length_required(), http::status::length_required, "length_required");
  check_error(upload_server::bad_request("why"), http::status::bad_request, "bad_request");
  check_error(upload_server::not_found(), http::status::not_found, "not_found");
  CHECK(upload_server::max_target_length < upload_server::max_head_bytes);
}

TEST_CASE("a full disk or quota is 507, other storage failures 500", "[http_replies][storage]") {
  const std::error_code enospc{ENOSPC, std::system_category()};
  const std::error_code edquot{EDQUOT, std::system_category()};
  const std::error_code eacces{EACCES, std::system_category()};
  CHECK(upload_server::is_out_of_space(enospc));
  CHECK(upload_server::is_out_of_space(edquot));
  CHECK(upload_server::is_out_of_space(std::make_error_code(std::errc::no_space_on_device)));
  CHECK_FALSE(upload_server::is_out_of_space(eacces));
  CHECK_FALSE(upload_server::is_out_of_space({}));

  Reply reply = upload_server::storage_failure_reply(enospc, "cannot write the file: full");
  check_error(reply, http::status::insufficient_storage, "insufficient_storage");
  CHECK(json_of(reply).at("message") == "cannot write the file: full");
  check_error(upload_server::storage_failure_reply(edquot, "quota"),
              http::status::insufficient_storage, "insufficient_storage");
  check_error(upload_server::storage_failure_reply(eacces, "denied"),
              http::status::internal_server_error, "storage");
}

TEST_CASE("an upload that cannot fit on the disk is 507 with the figures",
          "[http_replies][storage]") {
  const upload_server::SpaceCheck space{std::make_error_code(std::errc::no_space_on_device),
                                        31'048'576, 20'971'520};
  Reply reply = upload_server::insufficient_storage(30'000'000, space);
  check_error(reply, http::status::insufficient_storage, "insufficient_storage");
  const nlohmann::json body = json_of(reply);
  CHECK(body.at("reason") == "insufficient_storage");
  CHECK(body.at("declared_size") == 30'000'000);
  CHECK(body.at("needed_bytes") == 31'048'576);
  CHECK(body.at("available_bytes") == 20'971'520);
  CHECK(body.at("message") == upload_server::describe(space));
}

TEST_CASE("408s say which deadline, with the figures", "[http_replies][deadlines]") {
  Options options;
  options.body_timeout = 2s;
  options.min_rate = 1024;
  Reply reply = upload_server::late_body_reply("no data for 2 s", 300, 5000, options);
  check_error(reply, http::status::request_timeout, "request_timeout");
  nlohmann::json body = json_of(reply);
  CHECK(body.at("reason") == "body_timeout");
  CHECK(body.at("message") == "upload cut off: no data for 2 s");
  CHECK(body.at("received_bytes") == 300);
  CHECK(body.at("declared_size") == 5000);
  CHECK(body.at("body_timeout_ms") == 2000);
  CHECK(body.at("min_rate") == 1024);

  reply = upload_server::late_head_reply(1500ms);
  check_error(reply, http::status::request_timeout, "request_timeout");
  body = json_of(reply);
  CHECK(body.at("reason") == "header_timeout");
  CHECK(body.at("message") == "the request's head did not arrive within 1500 ms");
  CHECK(body.at("header_timeout_ms") == 1500);
}

TEST_CASE("201 lists every stored file, the first also at the top level", "[http_replies]") {
  const std::vector<Stored> stored{{"a.bin", 3, "aaa"}, {"b.bin", 4, "bbb"}};
  Reply reply = upload_server::created_reply(stored, true);
  CHECK(reply.status == http::status::created);
  CHECK(reply.keep_alive);
  const nlohmann::json body = json_of(reply);
  CHECK(body.at("name") == "a.bin");
  CHECK(body.at("bytes") == 3);
  CHECK(body.at("sha256") == "aaa");
  REQUIRE(body.at("files").size() == 2);
  CHECK(body.at("files")[1] == nlohmann::json{{"name", "b.bin"}, {"bytes", 4}, {"sha256", "bbb"}});
  CHECK_FALSE(upload_server::created_reply(stored, false).keep_alive);
}

TEST_CASE("refusals keep their status and Retry-After", "[http_replies]") {
  const admit::Rejection busy{.reason = admit::Reason::no_slot,
                              .declared_size = 10,
                              .needed_bytes = 2,
                              .available_bytes = 0,
                              .memory_budget = admit::MiB,
                              .slots_in_use = 1,
                              .slots = 1};
  const Reply reply = upload_server::refusal_reply(busy, std::chrono::milliseconds{2400});
  CHECK(reply.status == http::status::service_unavailable);
  CHECK(reply.retry_after == 3);  // the ceiling of the body's 2400 ms
  CHECK(json_of(reply).at("reason") == "no_slot");
  CHECK(json_of(reply).at("retry_after_ms") == 2400);
}

TEST_CASE("a part the process cannot allocate is 503 out_of_memory with Retry-After",
          "[http_replies]") {
  const Reply reply =
      upload_server::out_of_memory_reply(20 * admit::MiB, std::chrono::milliseconds{1200});
  check_error(reply, http::status::service_unavailable, "service_unavailable");
  CHECK(reply.retry_after == 2);
  const nlohmann::json body = json_of(reply);
  CHECK(body.at("reason") == "out_of_memory");
  CHECK(body.at("needed_bytes") == 20 * admit::MiB);
  CHECK(body.at("retry_after_ms") == 1200);
}

TEST_CASE("check_body_limit: the one limit, for every upload path", "[body_limit]") {
  Options options;
  options.max_body = admit::MiB;
  CHECK_FALSE(upload_server::check_body_limit(options, 0));
  CHECK_FALSE(upload_server::check_body_limit(options, admit::MiB));
  const auto over = upload_server::check_body_limit(options, admit::MiB + 1);
  REQUIRE(over);
  CHECK(over->declared_size == admit::MiB + 1);
  CHECK(over->max_body == admit::MiB);

  const Reply reply = upload_server::over_body_limit_reply(*over);
  CHECK(reply.status == http::status::payload_too_large);
  const nlohmann::json body = json_of(reply);
  CHECK(body.at("reason") == "max_body");
  CHECK(body.at("declared_size") == admit::MiB + 1);
  CHECK(body.at("max_body") == admit::MiB);
  CHECK(body.at("message") ==
        "the upload declares 1048577 bytes (1 MiB), more than the server's limit of 1048576 "
        "bytes (1 MiB)");

  const auto close = upload_server::over_body_limit_close(*over);
  CHECK(close.close_code == 1009);
  CHECK(close.reason == "max_body: declared 1048577 bytes, the limit is 1048576 bytes");
  // The largest figures still fit a close frame.
  constexpr std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
  options.max_body = huge - 1;
  const auto at_most = upload_server::check_body_limit(options, huge);
  REQUIRE(at_most);
  CHECK(upload_server::over_body_limit_close(*at_most).reason.size() <=
        upload_server::max_close_reason);
}

TEST_CASE("/healthz: 200 ok, or 503 pressure with Retry-After while under pressure",
          "[http_replies][memory]") {
  const Reply ok = upload_server::health_reply(false, true, std::chrono::seconds{5});
  CHECK(ok.status == http::status::ok);
  CHECK(ok.body == "ok\n");
  CHECK(ok.content_type == "text/plain");
  CHECK(ok.retry_after == 0);
  CHECK(ok.keep_alive);

  const Reply pressure = upload_server::health_reply(true, false, std::chrono::milliseconds{4100});
  CHECK(pressure.status == http::status::service_unavailable);
  CHECK(pressure.body == "pressure\n");
  CHECK(pressure.content_type == "text/plain");
  CHECK(pressure.retry_after == 5);  // a refused upload's, for Reason::pressure
  CHECK_FALSE(pressure.keep_alive);
}

TEST_CASE("GET /: the upload page has every element the browser tests drive", "[upload_page]") {
  const std::string_view page = upload_server::upload_page();
  CHECK(page.starts_with("<!doctype html>"));
  for (const char* element :
       {R"(<input type="file" id="file">)", R"(<button id="upload")", R"(<button id="cancel")",
        R"(<progress id="progress" max="100" value="0">)", R"(id="status")", R"(id="sha256")",
        R"(id="local-sha256")"}) {
    CAPTURE(element);
    CHECK(page.find(element) != std::string_view::npos);
  }
  CHECK(page.find("/ws/upload") != std::string_view::npos);
  CHECK(page.ends_with("</html>\n"));
}
