// Packaging test: <admit/asio.hpp> through admit::asio (Boost.Asio) or, when the
// target defines ADMIT_ASIO_STANDALONE, admit::asio_standalone (standalone Asio).
#include <admit/admit.hpp>
#include <admit/asio.hpp>

#if defined(ADMIT_ASIO_STANDALONE)
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#if defined(BOOST_ASIO_VERSION)
#error "admit::asio_standalone pulled in Boost.Asio"
#endif
namespace net = ::asio;
#else
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
namespace net = ::boost::asio;
#endif

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  net::io_context io;
  int result = 1;
  admit::asio::async_acquire(pool, 10 * admit::MiB,
                             net::bind_executor(io, [&](admit::Admission admission) {
                               result = admission && admission->bytes() == 2097152 ? 0 : 2;
                             }));
  io.run();
  return result;
}
