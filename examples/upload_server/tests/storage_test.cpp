// Tests for storage.hpp and sha256.hpp: safe names, and uploads that appear in
// the directory whole or not at all.
#include "storage.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "sha256.hpp"

namespace fs = std::filesystem;
using upload_server::max_file_name_length;
using upload_server::sanitize_file_name;
using upload_server::Sha256;
using upload_server::Stored;
using upload_server::UploadFile;

namespace {

// A fresh directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "upload_server_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error{errno, std::system_category()};
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

  [[nodiscard]] const fs::path& path() const { return path_; }

  /// Every entry's name, hidden ones included, sorted.
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator{path_}) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  [[nodiscard]] std::string read(const std::string& name) const {
    std::ifstream in{path_ / name, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  }

 private:
  fs::path path_;
};

std::string sha256_of(std::string_view data) {
  Sha256 sha;
  sha.update(data);
  return sha.hex_digest();
}

// Stores `data` as `name` in `dir` in one go; REQUIREs that every step works.
Stored store(const TempDir& dir, std::string_view name, std::string_view data) {
  UploadFile file;
  REQUIRE_FALSE(file.open(dir.path(), name));
  REQUIRE_FALSE(file.write(data));
  Stored stored;
  REQUIRE_FALSE(file.commit(stored));
  return stored;
}

}  // namespace

TEST_CASE("Sha256 matches the FIPS 180-2 vectors, fed whole or in pieces", "[storage][sha256]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Sha256>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Sha256>);
  CHECK(sha256_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string expected = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
  CHECK(sha256_of(two_blocks) == expected);

  Sha256 pieces;
  for (const char c : two_blocks) pieces.update(std::string_view{&c, 1});
  Sha256 moved{std::move(pieces)};
  CHECK(moved.hex_digest() == expected);
  // hex_digest() starts over.
  moved.update("abc");
  CHECK(moved.hex_digest() == sha256_of("abc"));
  CHECK(moved.hex_digest() == sha256_of(""));
}

TEST_CASE("sanitize_file_name keeps the base name's safe characters only", "[storage][names]") {
  CHECK(sanitize_file_name("test_file.zip") == "test_file.zip");
  CHECK(sanitize_file_name("Report 2024 (final).PDF") == "Report_2024__final_.PDF");
  CHECK(sanitize_file_name("../../etc/passwd") == "passwd");
  CHECK(sanitize_file_name("C:\\x\\y.zip") == "y.zip");
  CHECK(sanitize_file_name("a/b\\c/") == "upload");
  CHECK(sanitize_file_name(".hidden") == "hidden");
  CHECK(sanitize_file_name("..") == "upload");
  CHECK(sanitize_file_name("-rf") == "rf");
  CHECK(sanitize_file_name(".-.x") == "x");
  CHECK(sanitize_file_name("") == "upload");
  CHECK(sanitize_file_name(std::string_view{"a\0b\r\n", 5}) == "a_b__");
  // Visible letters and signs of any script are kept, as UTF-8.
  CHECK(sanitize_file_name("h\xc3\xa9llo.txt") == "h\xc3\xa9llo.txt");  // é
  CHECK(sanitize_file_name("\xe6\x97\xa5\xe6\x9c\xac.zip") ==
        "\xe6\x97\xa5\xe6\x9c\xac.zip");                                // 日本
  CHECK(sanitize_file_name("\xf0\x9f\x93\xa6") == "\xf0\x9f\x93\xa6");  // 📦
  // One '_' per character that is not, however many bytes it takes in UTF-8:
  // spaces, invisible and bidi controls (a name must show as what it is).
  CHECK(sanitize_file_name("a\xc2\xa0z") == "a_z");                      // no-break space
  CHECK(sanitize_file_name("cod\xe2\x80\xaetxt.exe") == "cod_txt.exe");  // U+202E
  CHECK(sanitize_file_name("a\xe2\x80\x8bz") == "a_z");                  // zero-width space
  CHECK(sanitize_file_name("\xef\xbb\xbfx") == "_x");                    // BOM
  CHECK(sanitize_file_name("a\xee\x80\x80") == "a_");                    // private use
  CHECK(sanitize_file_name("a\xf3\xa0\x80\x81") == "a_");                // a tag character
  CHECK(sanitize_file_name("a\xc2\x85") == "a_");                        // a C1 control
  // What is not UTF-8 (overlong, a surrogate, cut short, stray): never kept.
  CHECK(sanitize_file_name("\xff\xfe") == "__");
  CHECK(sanitize_file_name("a\xc0\xafz") == "a_z");          // an overlong '/'
  CHECK(sanitize_file_name("a\xed\xa0\x80z") == "a_z");      // U+D800
  CHECK(sanitize_file_name("a\xc3") == "a_");                // cut short
  CHECK(sanitize_file_name("a\xa9\xa9z") == "a_z");          // stray continuation bytes
  CHECK(sanitize_file_name("a\xf4\x90\x80\x80z") == "a_z");  // over U+10FFFF
}

TEST_CASE("sanitize_file_name caps the length and keeps a short extension", "[storage][names]") {
  const std::string long_stem(300, 'a');
  CHECK(sanitize_file_name(long_stem) == std::string(max_file_name_length, 'a'));
  const std::string kept = sanitize_file_name(long_stem + ".tar.gz");
  CHECK(kept.size() == max_file_name_length);
  CHECK(kept == std::string(max_file_name_length - 3, 'a') + ".gz");
  const std::string long_extension = "a." + std::string(200, 'b');
  CHECK(sanitize_file_name(long_extension) == long_extension.substr(0, max_file_name_length));
  // A cut never splits a UTF-8 character, with or without a kept extension.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";  // é, 2 bytes each
  CHECK(sanitize_file_name("a" + accents) == "a" + accents.substr(0, max_file_name_length - 2));
  CHECK(sanitize_file_name("a" + accents + ".gz") ==
        "a" + accents.substr(0, max_file_name_length - 4) + ".gz");
  // Every result is a fixed point: sanitizing twice changes nothing.
  for (const std::string& name : {long_stem + ".tar.gz", std::string{"../.x y"}, std::string{},
                                  "a" + accents, accents + ".gz"}) {
    CHECK(sanitize_file_name(sanitize_file_name(name)) == sanitize_file_name(name));
  }
}

TEST_CASE("an upload is stored whole, with its size and SHA-256", "[storage][upload]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<UploadFile>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<UploadFile>);
  TempDir dir;
  UploadFile file;
  REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
  CHECK(file.is_open());
  const std::string first(100'000, 'x');
  const std::string second = std::string{"\0\r\n--", 5} + "tail";
  REQUIRE_FALSE(file.write(first));
  REQUIRE_FALSE(file.write(""));
  REQUIRE_FALSE(file.write(second));
  CHECK(file.bytes() == first.size() + second.size());

  // Until commit, the upload is only a hidden temporary file.
  const std::vector<std::string> during = dir.entries();
  REQUIRE(during.size() == 1);
  CHECK(during[0].starts_with(".a.zip."));
  CHECK(during[0].ends_with(".part"));

  Stored stored;
  REQUIRE_FALSE(file.commit(stored));
  CHECK(stored.name == "a.zip");
  CHECK(stored.bytes == first.size() + second.size());
  CHECK(stored.sha256 == sha256_of(first + second));
  CHECK(dir.entries() == std::vector<std::string>{"a.zip"});
  CHECK(dir.read("a.zip") == first + second);
  CHECK_FALSE(file.is_open());
  CHECK(file.bytes() == 0);
}

TEST_CASE("a name already taken gets a number: no upload overwrites another", "[storage][upload]") {
  TempDir dir;
  CHECK(store(dir, "a.zip", "one").name == "a.zip");
  // Two uploads of the same name at once: separate temporary files.
  UploadFile second;
  UploadFile third;
  REQUIRE_FALSE(second.open(dir.path(), "a.zip"));
  REQUIRE_FALSE(third.open(dir.path(), "a.zip"));
  REQUIRE_FALSE(second.write("two"));
  REQUIRE_FALSE(third.write("three"));
  Stored stored;
  REQUIRE_FALSE(third.commit(stored));
  CHECK(stored.name == "a-1.zip");
  REQUIRE_FALSE(second.commit(stored));
  CHECK(stored.name == "a-2.zip");
  CHECK(store(dir, "noext", "four").name == "noext");
  CHECK(store(dir, "noext", "five").name == "noext-1");
  CHECK(dir.entries() ==
        std::vector<std::string>{"a-1.zip", "a-2.zip", "a.zip", "noext", "noext-1"});
  CHECK(dir.read("a.zip") == "one");
  CHECK(dir.read("a-1.zip") == "three");
  CHECK(dir.read("a-2.zip") == "two");
}

TEST_CASE("an upload that is not committed leaves nothing behind", "[storage][upload]") {
  TempDir dir;
  SECTION("destroyed") {
    UploadFile file;
    REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
    REQUIRE_FALSE(file.write("partial"));
  }
  SECTION("discarded, after which it can be reused") {
    UploadFile file;
    REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
    REQUIRE_FALSE(file.write("partial"));
    file.discard();
    CHECK_FALSE(file.is_open());
    CHECK(dir.entries().empty());
    REQUIRE_FALSE(file.open(dir.path(), "b.zip"));
    REQUIRE_FALSE(file.write("b"));
    Stored stored;
    REQUIRE_FALSE(file.commit(stored));
    CHECK(stored.sha256 == sha256_of("b"));
    std::filesystem::remove(dir.path() / "b.zip");
  }
  SECTION("moved from: only the new owner's lifetime counts") {
    UploadFile target;
    {
      UploadFile source;
      REQUIRE_FALSE(source.open(dir.path(), "a.zip"));
      REQUIRE_FALSE(source.write("moved"));
      target = std::move(source);
    }
    CHECK(dir.entries().size() == 1);  // the moved-from source removed nothing
    UploadFile constructed{std::move(target)};
    CHECK(constructed.bytes() == 5);
    CHECK(dir.entries().size() == 1);
  }
  CHECK(dir.entries().empty());
}

TEST_CASE("a write error sticks, and commit then fails leaving nothing", "[storage][upload]") {
  TempDir dir;
  UploadFile file;
  REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
  std::error_code error;
  {
    // A file size limit makes write() fail with EFBIG, as a full disk fails
    // with ENOSPC; SIGXFSZ is ignored so that it reports instead of killing us.
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit small = saved;
    small.rlim_cur = 1024;
    const auto saved_handler = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    error = file.write(std::string(4096, 'x'));
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, saved_handler);
  }
  CHECK(error == std::errc::file_too_large);
  CHECK(file.write("more") == error);
  Stored stored{.name = "untouched", .bytes = 0, .sha256 = ""};
  CHECK(file.commit(stored) == error);
  CHECK(stored.name == "untouched");
  CHECK_FALSE(file.is_open());
  CHECK(dir.entries().empty());
  CHECK(file.commit(stored) == std::errc::bad_file_descriptor);
}

TEST_CASE("open and misuse report error codes, not exceptions", "[storage][upload]") {
  TempDir dir;
  UploadFile file;
  Stored stored;
  CHECK(file.write("x") == std::errc::bad_file_descriptor);
  CHECK(file.commit(stored) == std::errc::bad_file_descriptor);
  CHECK(file.open(dir.path() / "missing", "a.zip") == std::errc::no_such_file_or_directory);
  store(dir, "plain", "x");
  CHECK(file.open(dir.path() / "plain", "a.zip") == std::errc::not_a_directory);
  for (const std::string_view unsafe : {"", "../a.zip", "a/b", ".hidden", "a b", "-x"}) {
    INFO(unsafe);
    CHECK(file.open(dir.path(), unsafe) == std::errc::invalid_argument);
  }
  CHECK_FALSE(file.is_open());
  REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
  CHECK(file.open(dir.path(), "b.zip") == std::errc::device_or_resource_busy);
  file.discard();
  CHECK(dir.entries() == std::vector<std::string>{"plain"});
}
