// main() for the test executables when building against Catch2 v2: compiled once
// into admit_catch_main (tests/CMakeLists.txt). Catch2 v3 brings its own main
// (Catch2::Catch2WithMain) and this file is not used.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
