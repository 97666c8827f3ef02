// benchmarks/callgrind_sites.cpp - N try_acquire + release pairs spread over
// four call sites, for counting instructions with valgrind --tool=callgrind.
//
//   admit_callgrind_sites N [SIZE]
//
// A server does not call try_acquire from one loop: each handler has its own
// call site, and each gives the reservation back its own way. With several
// call sites a compiler may stop inlining the pool's code into each (g++ 12
// then calls PoolCore::try_acquire and release out of line), which the
// one-site loop of callgrind_pair.cpp hides. This is a program of its own
// because those decisions are the whole program's: a second loop in
// callgrind_pair.cpp would change what that one measures.
//
// The pairs cycle through the four sites: the reservation is given back by
// its destructor, by release(), by a move into a longer-lived holder, and by
// an assignment over a held one. benchmarks/run counts it as callgrind_pair:
// (Ir(N2) - Ir(N1)) / (N2 - N1).
#include <admit/admit.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

namespace {

constexpr std::uint64_t budget = 1024 * admit::GiB;
constexpr std::uint32_t slots = 64;

using Pool = admit::SlotPool<>;

// noinline: each is a call site of its own, as a server's handlers are.
[[gnu::noinline]] bool site_destroy(Pool& pool, std::uint64_t size) {
  const admit::Admission admission = pool.try_acquire(size);
  return admission.has_value();
}

[[gnu::noinline]] bool site_release(Pool& pool, std::uint64_t size) {
  admit::Admission admission = pool.try_acquire(size);
  if (!admission) return false;
  admission->release();
  return true;
}

[[gnu::noinline]] bool site_move(Pool& pool, std::uint64_t size) {
  admit::Admission admission = pool.try_acquire(size);
  if (!admission) return false;
  const admit::SlotReservation held = std::move(*admission);
  return held.bytes() != 0;
}

[[gnu::noinline]] bool site_assign(Pool& pool, std::uint64_t size, admit::SlotReservation& held) {
  admit::Admission admission = pool.try_acquire(size);
  if (!admission) return false;
  held = std::move(*admission);  // gives back what `held` held before
  return true;
}

[[gnu::noinline]] std::uint64_t run(std::uint64_t n, std::uint64_t size) {
  Pool pool{{.memory_budget = budget, .slots = slots}};
  admit::SlotReservation held;
  std::uint64_t refused = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    bool admitted = false;
    switch (i % 4) {
      case 0:
        admitted = site_destroy(pool, size);
        break;
      case 1:
        admitted = site_release(pool, size);
        break;
      case 2:
        admitted = site_move(pool, size);
        break;
      default:
        admitted = site_assign(pool, size, held);
        break;
    }
    if (!admitted) ++refused;
  }
  return refused;
}

std::uint64_t parse(const char* text, const char* what) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') {
    std::fprintf(stderr, "admit_callgrind_sites: %s must be a number, got '%s'\n", what, text);
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: admit_callgrind_sites N [SIZE]\n");
    return 2;
  }
  const std::uint64_t n = parse(argv[1], "N");
  const std::uint64_t size = argc == 3 ? parse(argv[2], "SIZE") : 10 * admit::MiB;
  // As in callgrind_pair.cpp: a process that has started a thread.
  std::thread{[] {}}.join();
  const std::uint64_t refused = run(n, size);
  if (refused != 0) {
    std::fprintf(stderr, "admit_callgrind_sites: %llu of %llu refused\n",
                 static_cast<unsigned long long>(refused), static_cast<unsigned long long>(n));
    return 1;
  }
  return 0;
}
