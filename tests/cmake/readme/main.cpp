// Packaging test (README): the main.cpp beside the README's FetchContent example,
// using each target that example links: the core, fmt formatting and Boost.Asio.
#include <admit/admit.hpp>
#include <admit/asio.hpp>
#include <admit/fmt.hpp>

#include <fmt/format.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <string>

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 50 * admit::MiB, .slots = 4}};
  boost::asio::io_context io;
  std::string answer;
  admit::asio::async_acquire(pool, 2'530'644'380,
                             boost::asio::bind_executor(io, [&](admit::Admission admission) {
                               if (!admission) answer = fmt::format("{}", admission.error());
                             }));
  io.run();
  fmt::print("{}\n", answer);
  return answer == "upload of 2.36 GiB needs 100 MiB, more than the whole budget of 50 MiB" ? 0 : 1;
}
