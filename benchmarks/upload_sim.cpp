// benchmarks/upload_sim.cpp - admit_upload_sim: replays upload traffic against
// a real admit::SlotPool in simulated time, to compare memory policies.
//
// The traffic: uploads arrive as a Poisson process (--rate per second); sizes
// are lognormal (--median-size, --sigma), which gives the long tail past 2 GiB
// that broke an upload server with about 200 MB free; an admitted upload
// lasts size / --bandwidth and holds its reservation until then. A client
// that is refused gives up at once, or, with --wait, waits up to that long for
// room and then gives up.
//
// The method: a deterministic, single-threaded discrete-event simulation. One
// trace is drawn from --seed and replayed against one SlotPool per policy
// and fairness mode (same budget, slots, waiter limit), so they all see
// exactly the same uploads. Events (arrival, end of an upload, end of a client's
// patience) run in order of simulated time, ties in the order they were
// scheduled. Without --wait a client calls try_acquire. With --wait it calls
// pool.async_acquire: an answer that is ready at once comes back inside that
// call; otherwise the handler runs inside the release (at an upload's end)
// that made room, on this same thread, at that simulated time; when the
// client's patience runs out first, ticket.cancel() answers it with
// `cancelled` (shown as "timed out"). Nothing depends on the wall clock, so
// the same flags give the same output, byte for byte.
//
// Printed per policy and size class (< 100 MiB, < 1 GiB, >= 1 GiB): uploads,
// admitted %, refused % by reason; per policy: mean (time-weighted) and peak
// reserved bytes, mean slots in use, and with --wait the p50 / p99 wait of
// the clients that waited and were admitted. At the end every policy's pool
// must be back to zero in use and its counters must match the replay's own
// (nothing over the limits, everything given back); if not, the simulator fails.
//
// --fairness all replays the same trace under FIFO, barging and lanes and
// prints them side by side (compare.hpp): per size class the share admitted
// and the p50 / p99 wait, and the large class's worst wait. Under lanes the
// pool's windows run on simulated time (PoolConfig::lanes_clock), and an audit
// (lanes_audit.hpp) fails the run if a head was not admitted within the bound
// Fairness::lanes promises.
//
// The random numbers come from std::mt19937_64 (fully specified by the
// standard) through our own exponential and Box-Muller transforms (the
// standard distributions' algorithms are left to each library).
//
// --scenario tenants replays a two-tenant trace (tenants.hpp): batch floods in
// bursts, interactive uploads steadily; each policy and fairness mode runs
// without partitions and with them (--partition), and the tables show each
// tenant's admitted share and waits side by side. With partitions the run
// fails (exit 1) if a tenant ever held more than its partition's ceiling.
//
// The parts live in upload_sim/: options, format, simulation, lanes_audit,
// report, compare, tenants, tenants_report.
#include <variant>
#include <vector>

#include "upload_sim/compare.hpp"
#include "upload_sim/options.hpp"
#include "upload_sim/report.hpp"
#include "upload_sim/simulation.hpp"
#include "upload_sim/tenants.hpp"
#include "upload_sim/tenants_report.hpp"

int main(int argc, char** argv) {
  using namespace admit_sim;
  const Options options = parse_options(argc, argv);
  if (options.scenario == Scenario::tenants) {
    const std::vector<TenantUpload> trace = make_tenant_trace(options);
    const std::vector<TenantResult> results = run_tenants(options, trace);
    if (options.csv) {
      print_tenant_csv(results);
    } else {
      print_tenants_header(options, trace);
      print_tenant_tables(options, results);
    }
    return 0;
  }
  const std::vector<Upload> trace = make_trace(options);
  // Mode-major: print_comparison finds a policy's modes by that order.
  std::vector<Result> results;
  for (const admit::Fairness fairness : options.fairness) {
    for (const PolicySpec& spec : options.policies) {
      results.push_back(std::visit(
          [&](const auto& policy) {
            return Simulation{options, trace, policy, fairness}.run(spec.name);
          },
          spec.policy));
    }
  }
  if (options.csv) {
    print_csv(options, results);
  } else if (options.fairness.size() > 1) {
    print_header(options, trace);
    print_comparison(options, results);
  } else {
    print_header(options, trace);
    print_tables(options, results);
  }
  return 0;
}
