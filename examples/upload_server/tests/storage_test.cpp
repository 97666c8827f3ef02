// Tests for storage.hpp and sha256.hpp: safe names; uploads that appear in
// the directory whole or not at all, leave no partial file even when the
// process is killed, never run out of names, and sweep what a crash left.
// The free-space checks are in storage_space_test.cpp.
//
// Each upload test runs with unnamed partial files (O_TMPFILE) and with the
// hidden-file fallback forced.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "storage_test_support.hpp"

namespace fs = std::filesystem;
using namespace storage_test;
using upload_server::is_out_of_space;
using upload_server::max_file_name_length;
using upload_server::sanitize_file_name;
using upload_server::StorageReport;

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
  // A partial file's name loses its leading '.', so no upload is ever swept.
  CHECK(sanitize_file_name(".a.zip.123.4.part") == "a.zip.123.4.part");
}

// Found with the file_name fuzz target, which checks a name against Unicode's
// lists: these are invisible (Default_Ignorable_Code_Point) but were kept, so
// "a<U+180B>.exe" showed as "a.exe".
TEST_CASE("sanitize_file_name drops the rarer invisible characters too", "[storage][names]") {
  CHECK(sanitize_file_name("a\xe1\xa0\x8b.exe") == "a_.exe");       // U+180B, Mongolian FVS1
  CHECK(sanitize_file_name("a\xe1\xa0\x8f.exe") == "a_.exe");       // U+180F, Mongolian FVS4
  CHECK(sanitize_file_name("a\xe1\xa0\x8e.exe") == "a_.exe");       // U+180E, vowel separator
  CHECK(sanitize_file_name("a\xe1\x9e\xb4\xe1\x9e\xb5") == "a__");  // U+17B4, U+17B5, Khmer
  CHECK(sanitize_file_name("a\xf0\x9b\xb2\xa0z") == "a_z");         // U+1BCA0, shorthand
  CHECK(sanitize_file_name("a\xf0\x9d\x85\xb3z") == "a_z");         // U+1D173, musical beam
  CHECK(sanitize_file_name("a\xf0\x9d\x85\xbaz") == "a_z");         // U+1D17A, musical phrase
  // Their visible neighbours stay.
  CHECK(sanitize_file_name("\xe1\xa0\x8a") == "\xe1\xa0\x8a");          // U+180A, Mongolian nirugu
  CHECK(sanitize_file_name("\xe1\x9e\xb3") == "\xe1\x9e\xb3");          // U+17B3, Khmer vowel QAU
  CHECK(sanitize_file_name("\xf0\x9d\x85\xb2") == "\xf0\x9d\x85\xb2");  // U+1D172, combining flag-5
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
  const bool unnamed = GENERATE(true, false);
  // --fsync off changes only when the bytes reach the disk, never what is stored.
  const bool sync = GENERATE(true, false);
  // Hashing on other threads changes nothing stored either.
  const unsigned hashing = GENERATE(0U, 2U);
  INFO((unnamed ? "unnamed partial files" : "hidden partial files (the fallback)"));
  INFO((sync ? "fsync at commit" : "no fsync at commit (--fsync off)"));
  INFO(hashing << " hash threads");
  upload_server::HashThreads hash_threads{hashing};
  const ModeGuard mode{
      {.unnamed_files = unnamed, .sync_commits = sync, .hash_threads = &hash_threads}};
  CHECK(upload_server::storage_mode().sync_commits == sync);
  TempDir dir;
  const bool supported = unnamed_files_in(dir);
  if (unnamed && !supported) WARN("no O_TMPFILE in " << dir.path() << ": the fallback runs twice");
  if (!unnamed) CHECK_FALSE(supported);
  UploadFile file;
  REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
  CHECK(file.is_open());
  CHECK(file.is_unnamed() == supported);
  // Past the bytes hashed inline, so that the rest goes to the threads.
  std::string first(upload_server::StreamingSha256::inline_bytes + 300'000, 'x');
  first[123'456] = 'y';
  const std::string second = std::string{"\0\r\n--", 5} + "tail";
  REQUIRE_FALSE(file.write(first));
  REQUIRE_FALSE(file.write(""));
  REQUIRE_FALSE(file.write(second));
  CHECK(file.bytes() == first.size() + second.size());

  // Until commit, the upload is nothing in the directory, or a hidden file.
  const std::vector<std::string> during = dir.entries();
  if (supported) {
    CHECK(during.empty());
  } else {
    REQUIRE(during.size() == 1);
    CHECK(during[0].starts_with(".a.zip."));
    CHECK(during[0].ends_with(".part"));
  }

  Stored stored;
  REQUIRE_FALSE(file.commit(stored));
  CHECK(stored.name == "a.zip");
  CHECK(stored.bytes == first.size() + second.size());
  CHECK(stored.sha256 == sha256_of(first + second));
  CHECK(dir.entries() == std::vector<std::string>{"a.zip"});
  CHECK(dir.read("a.zip") == first + second);
  CHECK_FALSE(file.is_open());
  CHECK(file.bytes() == 0);
  CHECK(file.planned_name().empty());
}

TEST_CASE("a name already taken gets a number: no upload overwrites another", "[storage][upload]") {
  const bool unnamed = GENERATE(true, false);
  const ModeGuard mode{{.unnamed_files = unnamed}};
  TempDir dir;
  CHECK(store(dir, "a.zip", "one").name == "a.zip");
  // Two uploads of the same name at once: both plan the first free name when
  // opened; the one that commits second gets the next.
  UploadFile second;
  UploadFile third;
  REQUIRE_FALSE(second.open(dir.path(), "a.zip"));
  REQUIRE_FALSE(third.open(dir.path(), "a.zip"));
  CHECK(second.planned_name() == "a-1.zip");
  CHECK(third.planned_name() == "a-1.zip");
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

TEST_CASE("names never run out: 1,005 uploads of one name are all stored", "[storage][names]") {
  // On tmpfs where there is one: fsync costs nothing there, and names are the
  // point here, not the disk.
  const fs::path base =
      fs::is_directory("/dev/shm") ? fs::path{"/dev/shm"} : fs::temp_directory_path();
  TempDir dir{base};
  constexpr int count = 1005;
  std::set<std::string> names;
  for (int i = 0; i < count; ++i) {
    const std::string data = "upload #" + std::to_string(i);
    const Stored stored = store(dir, "same.txt", data);
    INFO("upload #" << i << " stored as " << stored.name);
    if (i == 0) {
      CHECK(stored.name == "same.txt");
    } else if (i <= 9) {
      CHECK(stored.name == "same-" + std::to_string(i) + ".txt");
    } else {
      // "same-<16 hex digits>.txt"
      REQUIRE(stored.name.size() == std::string{"same-.txt"}.size() + 16);
      CHECK(stored.name.starts_with("same-"));
      CHECK(stored.name.ends_with(".txt"));
      CHECK(is_lower_hex(stored.name.substr(5, 16)));
    }
    CHECK(sanitize_file_name(stored.name) == stored.name);
    CHECK(names.insert(stored.name).second);
    REQUIRE(dir.read(stored.name) == data);  // never overwritten
  }
  CHECK(names.size() == count);
  CHECK(dir.entries().size() == count);

  // The same past the numbers with hidden partial files (linked by name, not
  // through /proc), and for the default name with no extension to keep.
  const ModeGuard mode{{.unnamed_files = false}};
  for (int i = 0; i < 12; ++i) CHECK(names.insert(store(dir, "upload.bin", "x").name).second);
  for (int i = 0; i < 12; ++i) CHECK(names.insert(store(dir, "noext", "y").name).second);
  CHECK(dir.entries().size() == count + 24);
  CHECK(std::none_of(names.begin(), names.end(), [](const std::string& n) { return n[0] == '.'; }));
}

TEST_CASE("a symlink where the name would go is never followed", "[storage][names]") {
  const bool unnamed = GENERATE(true, false);
  const ModeGuard mode{{.unnamed_files = unnamed}};
  TempDir dir;
  TempDir outside;
  { std::ofstream{outside.path() / "existing"} << "keep"; }
  fs::create_symlink(outside.path() / "created", dir.path() / "a.zip");  // dangling
  fs::create_symlink(outside.path() / "existing", dir.path() / "b.zip");
  CHECK(store(dir, "a.zip", "one").name == "a-1.zip");
  CHECK(store(dir, "b.zip", "two").name == "b-1.zip");
  CHECK(outside.entries() == std::vector<std::string>{"existing"});
  CHECK(outside.read("existing") == "keep");
  CHECK(dir.read("a-1.zip") == "one");
}

TEST_CASE("an upload that is not committed leaves nothing behind", "[storage][upload]") {
  const bool unnamed = GENERATE(true, false);
  const ModeGuard mode{{.unnamed_files = unnamed}};
  TempDir dir;
  const std::size_t while_open = unnamed_files_in(dir) ? 0 : 1;  // nothing, or the hidden file
  SECTION("destroyed") {
    UploadFile file;
    REQUIRE_FALSE(file.open(dir.path(), "a.zip", 1000));
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
    CHECK(dir.entries().size() == while_open);  // the moved-from source removed nothing
    UploadFile constructed{std::move(target)};
    CHECK(constructed.bytes() == 5);
    CHECK(constructed.planned_name() == "a.zip");
    CHECK(dir.entries().size() == while_open);
  }
  CHECK(dir.entries().empty());
}

TEST_CASE("no partial file outlives a process killed mid-upload", "[storage][upload][crash]") {
  const bool unnamed = GENERATE(true, false);
  INFO((unnamed ? "unnamed partial files" : "hidden partial files (the fallback)"));
  const ModeGuard mode{{.unnamed_files = unnamed}};
  TempDir dir;
  store(dir, "done.bin", "complete");
  const bool supported = unnamed_files_in(dir);  // before there is anything to sweep
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: an upload half written, then it waits to be killed. No
    // Catch2 here, and never back into the test runner.
    ::close(ready[0]);
    UploadFile file;
    const bool started =
        !file.open(dir.path(), "crash.bin", 4 * MiB) && !file.write(std::string(MiB, 'c'));
    const char status = started ? 'r' : 'x';
    (void)!::write(ready[1], &status, 1);
    for (int i = 0; i < 600; ++i) ::sleep(1);  // bounded, should the parent fail to kill it
    ::_exit(0);
  }
  ::close(ready[1]);
  pollfd wait_ready{.fd = ready[0], .events = POLLIN, .revents = 0};
  char status = 0;
  const bool got = ::poll(&wait_ready, 1, 10'000) == 1 && ::read(ready[0], &status, 1) == 1;
  ::kill(child, SIGKILL);
  int exit_status = 0;
  REQUIRE(::waitpid(child, &exit_status, 0) == child);
  ::close(ready[0]);
  REQUIRE(got);
  REQUIRE(status == 'r');
  CHECK(WIFSIGNALED(exit_status));

  const std::vector<std::string> after_kill = dir.entries();
  if (supported) {
    // The kernel freed the unnamed file with the process: nothing to sweep.
    CHECK(after_kill == std::vector<std::string>{"done.bin"});
  } else {
    // The fallback leaves its hidden file, which the next start removes.
    REQUIRE(after_kill.size() == 2);
    CHECK(after_kill[0].starts_with(".crash.bin." + std::to_string(child) + "."));
  }
  const StorageReport report = prepare_storage(dir.path());
  CHECK_FALSE(report.error);
  CHECK(report.removed == (supported ? 0 : 1));
  CHECK(report.kept == 0);
  CHECK(dir.entries() == std::vector<std::string>{"done.bin"});
  CHECK(dir.read("done.bin") == "complete");
}

TEST_CASE("prepare_storage removes stale partial files and nothing else", "[storage][sweep]") {
  TempDir dir;
  TempDir outside;
  const auto touch = [](const fs::path& path) { std::ofstream{path} << "x"; };
  touch(dir.path() / ".a.zip.123.4.part");           // stale, from a crashed server
  touch(dir.path() / ".storage-probe.9.0.part");     // stale too: the probe is a partial file
  touch(dir.path() / ".gitkeep");                    // the operator's
  touch(dir.path() / ".notours.part");               // not the pattern: no pid and counter
  touch(dir.path() / ".x.1.part");                   // only one number
  touch(dir.path() / "a.zip.123.4.part");            // not hidden: an upload's name
  fs::create_directory(dir.path() / ".d.1.2.part");  // not a file
  touch(outside.path() / "target");
  fs::create_symlink(outside.path() / "target", dir.path() / ".s.1.2.part");  // not followed
  // A hidden partial file of a running upload (ours: its lock is on another
  // open file description, which is what another process would hold).
  const ModeGuard mode{{.unnamed_files = false}};
  UploadFile running;
  REQUIRE_FALSE(running.open(dir.path(), "running.bin"));
  REQUIRE_FALSE(running.write("still writing"));

  const StorageReport report = prepare_storage(dir.path());
  CHECK_FALSE(report.error);
  CHECK(report.removed == 2);
  CHECK(report.kept == 1);
  CHECK_FALSE(report.unnamed_files);  // turned off above
  CHECK(report.free_bytes > 0);
  const std::vector<std::string> left = dir.entries();
  CHECK(left.size() == 7);
  CHECK(std::count_if(left.begin(), left.end(),
                      [](const std::string& n) { return n.starts_with(".running.bin."); }) == 1);
  CHECK(std::find(left.begin(), left.end(), ".a.zip.123.4.part") == left.end());
  CHECK(outside.entries() == std::vector<std::string>{"target"});

  const std::string line = upload_server::describe(report, dir.path());
  INFO(line);
  CHECK(line.starts_with("storage in " + dir.path().string() + ": "));
  CHECK_THAT(line, Catch::Matchers::Contains("hidden .part files (O_TMPFILE turned off)"));
  CHECK_THAT(line, Catch::Matchers::Contains("2 stale partial files removed, 1 kept"));

  Stored stored;
  REQUIRE_FALSE(running.commit(stored));  // the running upload was left alone
  CHECK(dir.read("running.bin") == "still writing");

  CHECK(prepare_storage(dir.path() / "missing").error == std::errc::no_such_file_or_directory);
  CHECK_THAT(upload_server::describe(prepare_storage(dir.path() / "missing"), "missing"),
             Catch::Matchers::Contains("cannot be used"));
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
  CHECK(is_out_of_space(error));
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
  CHECK(file.release_unwritten() == std::errc::bad_file_descriptor);
  CHECK(file.open(dir.path() / "missing", "a.zip") == std::errc::no_such_file_or_directory);
  CHECK(file.open(dir.path() / "missing", "a.zip", 10) == std::errc::no_such_file_or_directory);
  store(dir, "plain", "x");
  CHECK(file.open(dir.path() / "plain", "a.zip") == std::errc::not_a_directory);
  for (const std::string_view unsafe : {"", "../a.zip", "a/b", ".hidden", "a b", "-x"}) {
    INFO(unsafe);
    CHECK(file.open(dir.path(), unsafe) == std::errc::invalid_argument);
    CHECK(file.open(dir.path(), unsafe, 10) == std::errc::invalid_argument);
  }
  CHECK_FALSE(file.is_open());
  REQUIRE_FALSE(file.open(dir.path(), "a.zip"));
  CHECK(file.open(dir.path(), "b.zip") == std::errc::device_or_resource_busy);
  CHECK(file.open(dir.path(), "b.zip", 10) == std::errc::device_or_resource_busy);
  file.discard();
  CHECK(dir.entries() == std::vector<std::string>{"plain"});
}

TEST_CASE("no path leaks a descriptor", "[storage][upload]") {
  const bool unnamed = GENERATE(true, false);
  const ModeGuard mode{{.unnamed_files = unnamed}};
  TempDir dir;
  // The first commit initialises a per-thread random engine (which may open
  // /dev/urandom once); do that before counting.
  for (int i = 0; i < 11; ++i) store(dir, "warm", "w");
  const std::size_t before = open_descriptors();
  for (int round = 0; round < 20; ++round) {
    store(dir, "a.zip", "stored");  // committed (numbered, then random names)
    UploadFile file;
    REQUIRE_FALSE(file.open(dir.path(), "b.zip", 100));
    REQUIRE_FALSE(file.write("abandoned"));
    file.discard();  // discarded
    {
      UploadFile dropped;
      REQUIRE_FALSE(dropped.open(dir.path(), "c.zip"));
    }  // destroyed
    CHECK(file.open(dir.path(), "d.zip", std::uint64_t{1} << 62) == std::errc::no_space_on_device);
    CHECK(file.open(dir.path() / "missing", "d.zip") == std::errc::no_such_file_or_directory);
    REQUIRE_FALSE(file.open(dir.path(), "e.zip"));
    UploadFile moved{std::move(file)};
    Stored stored;
    CHECK_FALSE(moved.commit(stored));
    // A commit that fails: the directory went away under the upload.
    fs::create_directory(dir.path() / "gone");
    REQUIRE_FALSE(file.open(dir.path() / "gone", "f.zip"));
    REQUIRE_FALSE(file.write("lost"));
    fs::remove_all(dir.path() / "gone");
    CHECK(file.commit(stored) == std::errc::no_such_file_or_directory);
    (void)prepare_storage(dir.path());
  }
  CHECK(open_descriptors() == before);
  const std::vector<std::string> left = dir.entries();
  CHECK(std::none_of(left.begin(), left.end(), [](const std::string& n) { return n[0] == '.'; }));
}
