// Tests for the free-space side of storage.hpp: an upload that cannot fit is
// refused before anything is written, one that fits has its space held (or
// counted, without fallocate), and a disk that fills anyway leaves nothing.
//
// The small-filesystem tests mount a tmpfs of their own, in a mount namespace
// of this process's own, which needs root (as in CI); without it they pass
// with a warning that says they were skipped.
#include <cerrno>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "storage_test_support.hpp"

namespace fs = std::filesystem;
using namespace storage_test;
using upload_server::check_free_space;
using upload_server::describe;
using upload_server::is_out_of_space;
using upload_server::space_margin;
using upload_server::SpaceCheck;
using upload_server::StorageReport;

TEST_CASE("is_out_of_space tells a full disk from a broken one", "[storage][space]") {
  const auto system = [](int value) { return std::error_code{value, std::system_category()}; };
  CHECK(is_out_of_space(system(ENOSPC)));
  CHECK(is_out_of_space(std::make_error_code(std::errc::no_space_on_device)));
  CHECK(is_out_of_space(system(EDQUOT)));
  CHECK(is_out_of_space(system(EFBIG)));
  CHECK_FALSE(is_out_of_space({}));
  CHECK_FALSE(is_out_of_space(system(EIO)));
  CHECK_FALSE(is_out_of_space(system(EACCES)));
  CHECK_FALSE(is_out_of_space(system(EROFS)));
  CHECK_FALSE(is_out_of_space(system(ENOENT)));
  CHECK_FALSE(is_out_of_space(std::make_error_code(std::errc::file_exists)));
}

TEST_CASE("a space check in words says how much is needed and how much is free",
          "[storage][space]") {
  const SpaceCheck full{.error = std::make_error_code(std::errc::no_space_on_device),
                        .needed = 31'048'576,
                        .available = 20'971'520};
  CHECK(describe(full) ==
        "the upload needs 31048576 bytes with the margin, the disk has 20971520 free");
  // The widest figures still leave room in a WebSocket close reason (123
  // bytes) for the server's "insufficient storage: ".
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const SpaceCheck widest{.error = full.error, .needed = max, .available = max};
  CHECK(describe(widest).size() + std::string_view{"insufficient storage: "}.size() <= 123);
  // statvfs failing is no figure at all.
  TempDir dir;
  const SpaceCheck broken = check_free_space(dir.path() / "missing", 10);
  CHECK_THAT(describe(broken), Catch::Matchers::StartsWith("cannot check the free space: "));
  CHECK_FALSE(is_out_of_space(broken.error));
}

TEST_CASE("declared sizes that cannot fit are refused before anything is created",
          "[storage][space]") {
  TempDir dir;
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  CHECK(space_margin(0) == MiB);
  CHECK(space_margin(128 * MiB) == 2 * MiB);
  CHECK(check_free_space(dir.path(), 0).needed == MiB);
  CHECK_FALSE(check_free_space(dir.path(), 0).error);
  CHECK(check_free_space(dir.path(), 10 * MiB).needed == 10 * MiB + space_margin(10 * MiB));
  CHECK(check_free_space(dir.path() / "missing", 0).error == std::errc::no_such_file_or_directory);
  const std::size_t descriptors = open_descriptors();
  // 2^64-1, 2^63 and 2^62 bytes: no arithmetic wraps into "fits".
  for (const std::uint64_t declared : {max, max / 2 + 1, max / 4}) {
    INFO(declared);
    const upload_server::SpaceCheck space = check_free_space(dir.path(), declared);
    CHECK(space.error == std::errc::no_space_on_device);
    CHECK(space.needed >= declared);
    CHECK(space.available < space.needed);
    UploadFile file;
    const std::error_code error = file.open(dir.path(), "huge.bin", declared);
    CHECK(error == std::errc::no_space_on_device);
    CHECK(is_out_of_space(error));
    CHECK_FALSE(file.is_open());
  }
  CHECK(dir.entries().empty());
  CHECK(open_descriptors() == descriptors);
  // An empty upload holds nothing (fallocate refuses a length of 0).
  UploadFile empty;
  REQUIRE_FALSE(empty.open(dir.path(), "empty", 0));
  CHECK(empty.held_bytes() == 0);
  Stored stored;
  REQUIRE_FALSE(empty.commit(stored));
  CHECK(dir.read("empty").empty());
}

TEST_CASE("on a small filesystem an upload that cannot fit is refused, one that fits is held",
          "[storage][space]") {
  const SmallFs small{20 * MiB};
  SKIP_UNLESS_MOUNTED(small);
  const std::uint64_t empty = free_bytes(small.path());
  REQUIRE(empty == 20 * MiB);
  const StorageReport report = prepare_storage(small.path());
  CHECK(report.unnamed_files);
  CHECK(report.preallocates);  // tmpfs has fallocate
  CHECK(report.free_bytes == empty);

  // 30 MB onto 20 MiB: refused at once, nothing written or left.
  UploadFile too_big;
  CHECK(too_big.open(small.path(), "big.bin", 30'000'000) == std::errc::no_space_on_device);
  // Nor does the margin let one in that would fill the disk to the last block.
  CHECK(too_big.open(small.path(), "big.bin", 20 * MiB - MiB / 2) == std::errc::no_space_on_device);
  CHECK(free_bytes(small.path()) == empty);

  // 10 MB fits, and its space is held before any byte is written: a second
  // 10 MB, which would fit on the empty disk, no longer does.
  UploadFile first;
  REQUIRE_FALSE(first.open(small.path(), "first.bin", 10'000'000));
  CHECK(first.held_bytes() == 10'000'000);
  CHECK(free_bytes(small.path()) <= empty - 10'000'000);
  UploadFile second;
  CHECK(second.open(small.path(), "second.bin", 10'000'000) == std::errc::no_space_on_device);
  CHECK_FALSE(second.is_open());

  SECTION("a multipart-like upload writes less than it declared: the rest is given back") {
    REQUIRE_FALSE(first.write(std::string(1000, 'm')));
    Stored stored;
    REQUIRE_FALSE(first.commit(stored));
    CHECK(stored.bytes == 1000);
    CHECK(allocated_bytes(small.path() / "first.bin") <= 64 * 1024);
    CHECK(free_bytes(small.path()) >= empty - 64 * 1024);
    REQUIRE_FALSE(second.open(small.path(), "second.bin", 10'000'000));
  }
  SECTION("a file part that ends mid-body gives back the rest before the next part opens") {
    REQUIRE_FALSE(first.write(std::string(1000, 'p')));
    REQUIRE_FALSE(first.release_unwritten());
    CHECK(first.held_bytes() == 1000);
    CHECK(free_bytes(small.path()) >= empty - 64 * 1024);
    REQUIRE_FALSE(second.open(small.path(), "second.bin", 10'000'000));
    Stored stored;
    REQUIRE_FALSE(first.commit(stored));  // still whole, and committed as usual
    CHECK(stored.bytes == 1000);
    CHECK(small.dir().read("first.bin") == std::string(1000, 'p'));
  }
  SECTION("an abandoned upload gives its space back") {
    REQUIRE_FALSE(first.write(std::string(MiB, 'a')));
    first.discard();
    CHECK(free_bytes(small.path()) == empty);
    REQUIRE_FALSE(second.open(small.path(), "second.bin", 10'000'000));
  }
  second.discard();
  CHECK(free_bytes(small.path()) >= empty - 64 * 1024);
}

TEST_CASE("without fallocate, the space promised to open uploads is counted", "[storage][space]") {
  const SmallFs small{20 * MiB};
  SKIP_UNLESS_MOUNTED(small);
  const ModeGuard mode{{.preallocate = false}};
  const std::uint64_t empty = free_bytes(small.path());
  CHECK_FALSE(prepare_storage(small.path()).preallocates);
  CHECK_THAT(upload_server::describe(prepare_storage(small.path()), small.path()),
             Catch::Matchers::Contains("space counted, not held (fallocate turned off)"));

  UploadFile first;
  REQUIRE_FALSE(first.open(small.path(), "first.bin", 10'000'000));
  CHECK(first.held_bytes() == 0);
  CHECK(free_bytes(small.path()) == empty);  // nothing held on the disk...
  CHECK(check_free_space(small.path(), 0).available == empty - 10'000'000);  // ...but owed
  UploadFile second;
  CHECK(second.open(small.path(), "second.bin", 10'000'000) == std::errc::no_space_on_device);

  // Written bytes are on the disk and no longer owed: the sum stays the same.
  REQUIRE_FALSE(first.write(std::string(4 * MiB, 'w')));
  const std::uint64_t after_write = free_bytes(small.path());
  CHECK(check_free_space(small.path(), 0).available == after_write - (10'000'000 - 4 * MiB));
  // Ended early (a multipart file part): nothing owed any more.
  REQUIRE_FALSE(first.release_unwritten());
  CHECK(check_free_space(small.path(), 0).available == free_bytes(small.path()));
  REQUIRE_FALSE(second.open(small.path(), "second.bin", 10'000'000));
  second.discard();
  first.discard();
  CHECK(check_free_space(small.path(), 0).available == empty);
  REQUIRE_FALSE(second.open(small.path(), "second.bin", 10'000'000));
  second.discard();
  CHECK(check_free_space(small.path(), 0).available == empty);
}

TEST_CASE("a disk that fills under an upload of unknown size: ENOSPC, and nothing left",
          "[storage][space]") {
  const SmallFs small{4 * MiB};
  SKIP_UNLESS_MOUNTED(small);
  const bool unnamed = GENERATE(true, false);
  const ModeGuard mode{{.unnamed_files = unnamed}};
  const std::uint64_t empty = free_bytes(small.path());
  UploadFile file;
  REQUIRE_FALSE(file.open(small.path(), "grows.bin"));
  const std::string block(64 * 1024, 'g');
  std::error_code error;
  for (int i = 0; i < 100 && !error; ++i) error = file.write(block);  // 6.25 MiB at most
  CHECK(error == std::errc::no_space_on_device);
  CHECK(is_out_of_space(error));
  Stored stored;
  CHECK(file.commit(stored) == error);
  CHECK(small.dir().entries().empty());
  CHECK(free_bytes(small.path()) == empty);
}
