// Tests for tenants.hpp and the tenant flags of options.hpp: --partition's
// syntax and checks, the default partition, where the tenant is read, and the
// bypass token.
#include "tenants.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "options.hpp"
#include "support.hpp"

using admit_test::contains;
using admit_test::invalid_argument_message;
using upload_server::Options;
using upload_server::PartitionFlag;

namespace {

Options parse(std::vector<std::string_view> args) { return upload_server::parse_options(args); }

std::string parse_error(std::vector<std::string_view> args) {
  return invalid_argument_message([&] { (void)parse(std::move(args)); });
}

}  // namespace

TEST_CASE("the --partition flag reads NAME:GUARANTEE%:CEILING%", "[options][tenants]") {
  const PartitionFlag flag = upload_server::parse_partition_flag("batch:10%:30%");
  CHECK(flag.name == "batch");
  CHECK(flag.config.guarantee_percent == 10);
  CHECK(flag.config.ceiling_percent == 30);
  const PartitionFlag zero = upload_server::parse_partition_flag("a.b-c_1:0%:100%");
  CHECK(zero.name == "a.b-c_1");
  CHECK(zero.config.guarantee_percent == 0);
  CHECK(zero.config.ceiling_percent == 100);
}

TEST_CASE("the --partition flag refuses malformed values, naming the flag and quoting them",
          "[options][tenants]") {
  const std::string forms = "expected NAME:GUARANTEE%:CEILING% such as batch:10%:30%, got '";
  for (const std::string_view bad :
       {"batch", "batch:10%", "batch:10:30", "batch:10%:30", "batch:x%:30%", "batch:10%:101%",
        "batch:%:30%", "batch:-1%:30%", "batch:10%:30%:1%"}) {
    INFO(bad);
    CHECK(parse_error({"--partition", bad}) == "--partition: " + forms + std::string{bad} + "'");
  }
  // admit's own rules, with the flag's name and its value.
  CHECK(parse_error({"--partition", "ba tch:10%:30%"}) ==
        "--partition: admit: a partition name may hold only A-Z a-z 0-9 _ . -, got 'ba tch' in "
        "'ba tch:10%:30%'");
  CHECK(contains(parse_error({"--partition", ":10%:30%"}), "a partition name must be 1..64"));
  CHECK(contains(parse_error({"--partition", "b:40%:30%"}),
                 "--partition: admit::PartitionConfig::guarantee_percent must be in "
                 "0..ceiling_percent (30), got 40"));
  CHECK(contains(parse_error({"--partition", "b:0%:0%"}),
                 "--partition: admit::PartitionConfig::ceiling_percent must be in 1..100"));
}

TEST_CASE("the --partition flag refuses a name given twice and guarantees over 100 %",
          "[options][tenants]") {
  CHECK(parse_error({"--partition", "a:10%:30%", "--partition=a:0%:50%"}) ==
        "--partition: partition 'a' is given twice");
  CHECK(parse_error({"--partition", "a:60%:100%", "--partition", "b:41%:50%"}) ==
        "--partition: the guarantees add up to 101 %, over 100 %, with 'b'");
  CHECK(parse({"--partition", "a:60%:100%", "--partition", "b:40%:50%"}).partitions.size() == 2);
}

TEST_CASE("the --tenant-header flag takes effect only with --partition", "[options][tenants]") {
  CHECK(parse_error({"--tenant-header", "X-Api-Key"}) ==
        "--tenant-header: takes effect only with --partition; without partitions there is no "
        "tenant to pick");
  CHECK(parse({"--tenant-header", "X-Api-Key", "--partition", "a:0%:50%"}).tenant_header ==
        "X-Api-Key");
  CHECK(parse({"--tenant-header", "X-Api-Key", "--help"}).help);
  CHECK(parse_error({"--partition", "a:0%:50%", "--tenant-header", "X Tenant"}) ==
        "--tenant-header: expected a header name such as X-Tenant, got 'X Tenant'");
  CHECK(parse_error({"--partition", "a:0%:50%", "--tenant-header="}) ==
        "--tenant-header: expected a header name such as X-Tenant, got ''");
}

TEST_CASE("the --bypass-token flag wants at least 16 printable characters", "[options][tenants]") {
  CHECK(parse({"--bypass-token", "0123456789abcdef"}).bypass_token == "0123456789abcdef");
  const std::string expected =
      "--bypass-token: expected a token of at least 16 printable "
      "characters, no spaces, got '";
  CHECK(parse_error({"--bypass-token", "short"}) == expected + "short'");
  CHECK(parse_error({"--bypass-token", "0123456789 abcdef"}) == expected + "0123456789 abcdef'");
}

TEST_CASE("the pool gets a default partition unless one is named default", "[tenants]") {
  CHECK(upload_server::pool_partitions({}).empty());
  const auto added = upload_server::pool_partitions({{"batch", {10, 30}}});
  REQUIRE(added.size() == 2);
  CHECK(added[0].name == "batch");
  CHECK(added[1].name == "default");
  CHECK(added[1].config.guarantee_percent == 0);
  CHECK(added[1].config.ceiling_percent == 100);
  const auto named = upload_server::pool_partitions({{"default", {20, 60}}, {"batch", {0, 30}}});
  REQUIRE(named.size() == 2);
  CHECK(named[0].config.ceiling_percent == 60);  // as given, not replaced
}

TEST_CASE("the tenant comes from the header, else the query parameter tenant", "[tenants]") {
  CHECK(upload_server::tenant_of("batch", "/api/v1/upload?tenant=web") == "batch");
  CHECK(upload_server::tenant_of("", "/api/v1/upload?name=x&tenant=web") == "web");
  CHECK(upload_server::tenant_of("", "/upload?tenant=a%2Eb") == "a.b");  // decoded
  CHECK(upload_server::tenant_of("", "/upload?tenant=%zz").empty());     // bad escape: none
  CHECK(upload_server::tenant_of("", "/upload?name=x").empty());
  CHECK(upload_server::tenant_of("", "/upload").empty());
}

TEST_CASE("a bypass needs the exact token, and never without one", "[tenants]") {
  CHECK(upload_server::bypass_requested("0123456789abcdef", "0123456789abcdef"));
  CHECK_FALSE(upload_server::bypass_requested("0123456789abcdeF", "0123456789abcdef"));
  CHECK_FALSE(upload_server::bypass_requested("0123456789abcde", "0123456789abcdef"));
  CHECK_FALSE(upload_server::bypass_requested("", "0123456789abcdef"));
  CHECK_FALSE(upload_server::bypass_requested("", ""));  // no --bypass-token: no bypass
  CHECK_FALSE(upload_server::bypass_requested("anything", ""));
}
