// replay_main.cpp - runs a fuzz target's entry point once per file, without
// libFuzzer: the committed corpus of each target is a regression test in every
// build (any compiler, any sanitizer), not only under clang's -fsanitize=fuzzer.
//
//   T_replay PATH...   each PATH a file or a directory of files (not recursive)
//
// Exits 0 when every input ran (a broken property aborts, as under libFuzzer),
// 2 on a path it cannot read, or when no input was found at all.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>{in},
                                std::istreambuf_iterator<char>{}};
  // A copy of exactly the input's size, so that ASan sees a read past its end.
  std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path{argv[i]};
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator{path, error}) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      if (error) {
        std::fprintf(stderr, "replay: cannot list %s: %s\n", path.c_str(), error.message().c_str());
        return 2;
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        if (!run_file(file)) return 2;
        ++inputs;
      }
    } else {
      if (!run_file(path)) return 2;
      ++inputs;
    }
  }
  if (inputs == 0) {
    std::fprintf(stderr, "replay: no input found in the paths given\n");
    return 2;
  }
  std::printf("replay: %zu inputs ran\n", inputs);
  return 0;
}
