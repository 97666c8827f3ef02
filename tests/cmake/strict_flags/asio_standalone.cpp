// <admit/asio.hpp> on standalone Asio (ADMIT_ASIO_STANDALONE, from the
// admit::asio_standalone target) under the strict flags: its own translation unit,
// since a translation unit gets one Asio, instantiating each operation with a
// cancellation slot, an executor and a deadline.
#include <admit/admit.hpp>
#include <admit/asio.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>

std::uint64_t exercise_standalone_asio();

std::uint64_t exercise_standalone_asio() {
  using namespace std::chrono_literals;
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  ::asio::io_context io;
  ::asio::cancellation_signal cancel;
  std::uint64_t bytes = 0;
  auto record = [&bytes](admit::Admission admission) {
    if (admission) bytes += admission->bytes();
  };
  admit::asio::async_acquire(
      pool, admit::MiB,
      ::asio::bind_cancellation_slot(cancel.slot(), ::asio::bind_executor(io, record)));
  admit::asio::async_acquire(pool, admit::MiB, std::chrono::steady_clock::now() + 1s,
                             ::asio::bind_executor(io, record));
  admit::asio::async_acquire_for(pool, admit::MiB, 10ms, ::asio::bind_executor(io, record));
  cancel.emit(::asio::cancellation_type::terminal);
  io.run();
  return bytes;
}
