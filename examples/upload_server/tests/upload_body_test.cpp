// Tests for upload_body.hpp: a raw body is one file, a multipart body one file
// per file part, and either every file is stored or none is.
#include "upload_body.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "catch.hpp"
#include "storage_test_support.hpp"

namespace fs = std::filesystem;
using upload_server::Stored;
using upload_server::UploadBody;
using Failure = UploadBody::Failure;
using storage_test::sha256_of;
using storage_test::TempDir;

namespace {

struct FilePart {
  std::string disposition;  // the Content-Disposition parameters after "form-data"
  std::string data;
};

// A multipart body with boundary "xyz" and these parts.
std::string form(const std::vector<FilePart>& parts, bool closed = true) {
  std::string body;
  for (const FilePart& part : parts) {
    body += "--xyz\r\nContent-Disposition: form-data" + part.disposition + "\r\n\r\n" + part.data +
            "\r\n";
  }
  if (closed) body += "--xyz--\r\n";
  return body;
}

FilePart file(std::string_view filename, std::string data) {
  return {"; name=\"file\"; filename=\"" + std::string{filename} + "\"", std::move(data)};
}

// Feeds `body` in chunks of `chunk` bytes; returns false as soon as a write fails.
bool feed(UploadBody& upload, std::string_view body, std::size_t chunk = 7) {
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    if (!upload.write(body.substr(at, chunk))) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a raw body is one file under its sanitised name", "[upload_body]") {
  TempDir dir;
  UploadBody upload{dir.path(), std::nullopt, "../caf\xC3\xA9.txt"};
  REQUIRE_FALSE(upload.failed());
  REQUIRE(feed(upload, "hello, world"));
  REQUIRE(upload.finish());
  std::vector<Stored> stored;
  REQUIRE_FALSE(upload.commit(stored));
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].name == "caf\xC3\xA9.txt");
  CHECK(stored[0].bytes == 12);
  CHECK(stored[0].sha256 == sha256_of("hello, world"));
  CHECK(dir.entries() == std::vector<std::string>{"caf\xC3\xA9.txt"});
}

TEST_CASE("every file part of a multipart body is stored, in order", "[upload_body]") {
  TempDir dir;
  const std::string a(100'000, 'a');
  const std::string b = "second file\r\n--xy not a delimiter";
  const std::string body = form({{"; name=\"note\"", "a field, dropped"},
                                 file("a.bin", a),
                                 {"; name=\"empty\"; filename=\"\"", ""},  // an empty file input
                                 file("C:\\Users\\me\\b.txt", b),
                                 file("a.bin", "again")});
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{13}, body.size()}) {
    INFO("chunks of " << chunk);
    for (const std::string& name : dir.entries()) fs::remove(dir.path() / name);
    UploadBody upload{dir.path(), "xyz", "ignored.bin"};
    REQUIRE(feed(upload, body, chunk));
    REQUIRE(upload.finish());
    CHECK(upload.files() == 3);
    std::vector<Stored> stored;
    REQUIRE_FALSE(upload.commit(stored));
    REQUIRE(stored.size() == 3);
    CHECK(stored[0].name == "a.bin");
    CHECK(stored[0].sha256 == sha256_of(a));
    CHECK(stored[1].name == "b.txt");
    CHECK(stored[1].bytes == b.size());
    CHECK(stored[2].name == "a-1.bin");  // the same name twice: numbered, never replaced
    CHECK(dir.entries() == std::vector<std::string>{"a-1.bin", "a.bin", "b.txt"});
    CHECK(dir.read("a.bin") == a);
    CHECK(dir.read("b.txt") == b);
    CHECK(dir.read("a-1.bin") == "again");
  }
}

TEST_CASE("current_file names the file being written, once its part has begun", "[upload_body]") {
  TempDir dir;
  UploadBody raw{dir.path(), std::nullopt, "../caf\xC3\xA9.txt"};
  CHECK(raw.current_file() == "caf\xC3\xA9.txt");

  UploadBody multipart{dir.path(), "xyz", "ignored.bin"};
  CHECK(multipart.current_file().empty());
  const std::string body =
      form({{"; name=\"note\"", "a field"}, file("a b.bin", "1"), file("c.txt", "2")});
  const std::size_t second = body.find("--xyz", body.find("a b.bin"));
  REQUIRE(multipart.write(body.substr(0, second)));
  CHECK(multipart.current_file() == "a_b.bin");
  REQUIRE(multipart.write(body.substr(second)));
  CHECK(multipart.current_file() == "c.txt");
  REQUIRE(multipart.finish());
  std::vector<Stored> stored;
  REQUIRE_FALSE(multipart.commit(stored));
  CHECK(multipart.current_file().empty());
}

TEST_CASE("filename* names the file, decoded then sanitised", "[upload_body]") {
  TempDir dir;
  UploadBody upload{dir.path(), "xyz", ""};
  REQUIRE(feed(upload, form({{"; name=\"f\"; filename=\"x\"; filename*=UTF-8''..%2Fna%C3%AFve%20"
                              "r%C3%A9sum%C3%A9.txt",
                              "data"}})));
  REQUIRE(upload.finish());
  std::vector<Stored> stored;
  REQUIRE_FALSE(upload.commit(stored));
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].name == "na\xC3\xAFve_r\xC3\xA9sum\xC3\xA9.txt");  // the space is not kept
}

TEST_CASE("a multipart body that fails leaves no file at all", "[upload_body][errors]") {
  TempDir dir;
  const std::string two_files = form({file("a.bin", "first"), file("b.bin", "second")});
  std::vector<Stored> stored;

  SECTION("unclosed after two complete file parts") {
    UploadBody upload{dir.path(), "xyz", ""};
    REQUIRE(feed(upload, form({file("a.bin", "first"), file("b.bin", "second")}, false)));
    CHECK_FALSE(upload.finish());
    CHECK(upload.failure() == Failure::bad_request);
    CHECK(upload.error().starts_with("malformed multipart body: truncated"));
    CHECK(upload.commit(stored));
    CHECK(stored.empty());
  }
  SECTION("garbage after the first file part") {
    UploadBody upload{dir.path(), "xyz", ""};
    CHECK_FALSE(feed(upload,
                     "--xyz\r\nContent-Disposition: form-data; name=\"f\"; "
                     "filename=\"a.bin\"\r\n\r\nfirst\r\n--xyz!garbage"));
    CHECK(upload.failure() == Failure::bad_request);
    CHECK_FALSE(upload.write("more"));  // errors stick
    CHECK_FALSE(upload.finish());
  }
  SECTION("a bad filename* in the second part") {
    UploadBody upload{dir.path(), "xyz", ""};
    CHECK_FALSE(feed(
        upload, form({file("a.bin", "first"), {"; name=\"f\"; filename*=UTF-8''b%zz", "second"}})));
    CHECK(upload.error() ==
          "malformed multipart body: a part's filename* is not a valid RFC 8187 value "
          "(UTF-8''%XX...)");
  }
  SECTION("no part with a file name") {
    UploadBody upload{dir.path(), "xyz", ""};
    REQUIRE(feed(upload, form({{"; name=\"note\"", "hello"}})));
    CHECK_FALSE(upload.finish());
    CHECK(upload.error() == "the multipart body has no part with a filename");
  }
  SECTION("more file parts than max_files") {
    std::vector<FilePart> parts;
    for (std::size_t i = 0; i <= UploadBody::max_files; ++i) {
      parts.push_back(file("f" + std::to_string(i) + ".txt", "x"));
    }
    UploadBody upload{dir.path(), "xyz", ""};
    CHECK_FALSE(feed(upload, form(parts), 1000));
    CHECK(upload.failure() == Failure::bad_request);
    CHECK(upload.error() == "more than 32 file parts in one request");
    CHECK(upload.files() == UploadBody::max_files);
  }
  SECTION("the second file cannot be committed: the first is taken back") {
    // Hidden partial files, so that one can be made to vanish.
    const storage_test::ModeGuard hidden_files{{.unnamed_files = false}};
    UploadBody upload{dir.path(), "xyz", ""};
    REQUIRE(feed(upload, two_files));
    REQUIRE(upload.finish());
    // Its temporary file vanishing makes the second commit's link(2) fail.
    for (const std::string& name : dir.entries()) {
      if (name.starts_with(".b.bin.")) fs::remove(dir.path() / name);
    }
    const std::error_code error = upload.commit(stored);
    CHECK(error == std::errc::no_such_file_or_directory);
    CHECK(upload.failure() == Failure::storage);
    CHECK(upload.storage_error() == error);
    CHECK(stored.empty());
  }
  // Destroyed: whatever was begun is gone.
  CHECK(dir.entries() == std::vector<std::string>{});
}

TEST_CASE("a raw file that cannot be created fails at once, as storage", "[upload_body][errors]") {
  TempDir dir;
  UploadBody upload{dir.path() / "missing", std::nullopt, "a.bin"};
  CHECK(upload.failed());
  CHECK(upload.failure() == Failure::storage);
  CHECK(upload.storage_error() == std::errc::no_such_file_or_directory);
  CHECK(upload.error().starts_with("cannot create the file: "));
  CHECK_FALSE(upload.write("data"));
}
