#include "http_replies.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>
#include <nlohmann/json.hpp>

namespace upload_server {

namespace {

namespace http = boost::beast::http;

Reply json_reply(http::status status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

Reply json_reply(http::status status, const nlohmann::json& body) {
  return json_reply(status, body.dump() + "\n");
}

// "30 s" or "250 ms", as ProgressWatch writes durations.
std::string human(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000)
                               : fmt::format("{} ms", d.count());
}

}  // namespace

Reply error_reply(http::status status, std::string_view error, std::string_view message) {
  return json_reply(status, {{"error", error}, {"message", message}});
}

Reply bad_request(std::string_view message) {
  return error_reply(http::status::bad_request, "bad_request", message);
}

Reply not_found() { return error_reply(http::status::not_found, "not_found", "no such path"); }

Reply length_required() {
  return error_reply(http::status::length_required, "length_required",
                     "an upload needs a Content-Length: it is the size admission is asked for");
}

Reply method_not_allowed(std::string_view allow) {
  Reply reply = error_reply(http::status::method_not_allowed, "method_not_allowed",
                            "this path takes " + std::string{allow});
  reply.allow = allow;
  return reply;
}

Reply upgrade_required() {
  Reply reply = error_reply(
      http::status::upgrade_required, "upgrade_required",
      "/ws/upload is a WebSocket endpoint: GET it with Connection: Upgrade and Upgrade: websocket");
  reply.upgrade = "websocket";
  return reply;
}

Reply target_too_long() {
  return error_reply(http::status::uri_too_long, "uri_too_long",
                     fmt::format("the request target is longer than {} bytes", max_target_length));
}

Reply head_too_large() {
  return error_reply(
      http::status::request_header_fields_too_large, "request_header_fields_too_large",
      fmt::format("the request's header fields are larger than {} bytes in all", max_head_bytes));
}

Reply refusal_reply(const admit::Rejection& rejection, RetryAfter retry) {
  HttpRefusal refusal = http_refusal(rejection, retry);
  Reply reply = json_reply(static_cast<http::status>(refusal.status), std::move(refusal.body));
  reply.retry_after = refusal.retry_after;
  return reply;
}

Reply out_of_memory_reply(std::uint64_t bytes, std::chrono::milliseconds retry) {
  Reply reply = json_reply(
      http::status::service_unavailable,
      {{"error", "service_unavailable"},
       {"reason", "out_of_memory"},
       {"message",
        fmt::format(
            "the server cannot allocate the {} bytes the upload is buffered in; retry later",
            bytes)},
       {"needed_bytes", bytes},
       {"retry_after_ms", retry.count()}});
  reply.retry_after = retry_after_seconds(retry);
  return reply;
}

Reply over_body_limit_reply(const OverBodyLimit& over) {
  return json_reply(http::status::payload_too_large, over_body_limit_json(over) + "\n");
}

Reply late_head_reply(std::chrono::milliseconds header_timeout) {
  return json_reply(
      http::status::request_timeout,
      {{"error", "request_timeout"},
       {"reason", "header_timeout"},
       {"message", "the request's head did not arrive within " + human(header_timeout)},
       {"header_timeout_ms", header_timeout.count()}});
}

Reply late_body_reply(std::string_view why, std::uint64_t received_bytes,
                      std::uint64_t declared_size, const Options& options) {
  return json_reply(http::status::request_timeout,
                    {{"error", "request_timeout"},
                     {"reason", "body_timeout"},
                     {"message", fmt::format("upload cut off: {}", why)},
                     {"received_bytes", received_bytes},
                     {"declared_size", declared_size},
                     {"body_timeout_ms", options.body_timeout.count()},
                     {"min_rate", options.min_rate}});
}

Reply insufficient_storage(std::uint64_t declared_size, const SpaceCheck& space) {
  return json_reply(http::status::insufficient_storage, {{"error", "insufficient_storage"},
                                                         {"reason", "insufficient_storage"},
                                                         {"message", describe(space)},
                                                         {"declared_size", declared_size},
                                                         {"needed_bytes", space.needed},
                                                         {"available_bytes", space.available}});
}

Reply storage_failure_reply(std::error_code error, std::string_view message) {
  if (is_out_of_space(error)) {
    return error_reply(http::status::insufficient_storage, "insufficient_storage", message);
  }
  return error_reply(http::status::internal_server_error, "storage", message);
}

Reply health_reply(bool under_pressure, bool keep_alive, std::chrono::milliseconds retry) {
  Reply reply;
  reply.content_type = "text/plain";
  reply.keep_alive = keep_alive;
  if (under_pressure) {
    reply.status = http::status::service_unavailable;
    reply.body = "pressure\n";
    reply.retry_after = retry_after_seconds(retry);
  } else {
    reply.body = "ok\n";
  }
  return reply;
}

Reply created_reply(const std::vector<Stored>& stored, bool keep_alive) {
  nlohmann::json files = nlohmann::json::array();
  for (const Stored& file : stored) {
    files.push_back({{"name", file.name}, {"bytes", file.bytes}, {"sha256", file.sha256}});
  }
  nlohmann::json body = nlohmann::json::object();
  if (!stored.empty()) body = files[0];
  body["files"] = std::move(files);
  Reply reply = json_reply(http::status::created, body);
  reply.keep_alive = keep_alive;
  return reply;
}

}  // namespace upload_server
