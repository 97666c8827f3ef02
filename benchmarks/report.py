#!/usr/bin/python3
"""benchmarks/report.py - the tables benchmarks/run prints (standard library only).

  report.py table RESULTS.json
      One line per benchmark case: its time per operation, its ratio to the bare
      atomic floor measured in the same run, allocations and refusals per
      operation, and the run-to-run spread; then the targets, met or missed.

  report.py callgrind DIR N1 N2 IMPL...
      Instructions per try_acquire + release pair from DIR/callgrind.IMPL.N1 and
      DIR/callgrind.IMPL.N2 (valgrind --tool=callgrind runs of
      admit_callgrind_pair IMPL N, or admit_callgrind_sites N for IMPL
      admit_sites): (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up
      cancels out. For admit, the same difference per source file of the
      (inlined) code, from callgrind_annotate, says where the instructions go.
"""

import json
import os
import re
import subprocess
import sys

FLOOR = "atomic_floor"


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    if ns >= 10:
        return f"{ns:.1f} ns"
    return f"{ns:.2f} ns"


def to_ns(value, unit):
    return value * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def load_cases(path):
    """[(run_name, {"min", "median", "cv", "allocs", "refused", "threads"})] in the order the
    cases were registered (random interleaving shuffles the JSON)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    cases = {}
    rank = {}
    for b in data["benchmarks"]:
        name = b["run_name"]
        kind = b.get("aggregate_name") if b.get("run_type") == "aggregate" else "single"
        if kind not in ("median", "min", "cv", "single"):
            continue
        case = cases.setdefault(name, {"threads": b.get("threads", 1)})
        rank[name] = (b.get("family_index", 0), b.get("per_family_instance_index", 0))
        if b.get("error_occurred"):
            case["error"] = b.get("error_message", "error")
        elif kind == "cv":
            case["cv"] = b["real_time"]  # a fraction, not a time
        else:
            value = to_ns(b["real_time"], b["time_unit"])
            for key in (("median", "min") if kind == "single" else (kind,)):
                case[key] = value
            if kind in ("median", "single"):
                case["allocs"] = b.get("allocs/op")
                case["refused"] = b.get("refused/op")
    return data["context"], sorted(cases.items(), key=lambda item: rank[item[0]])


def split(run_name):
    """'pair/admit/10MiB/real_time/threads:2' -> ('pair/admit/10MiB', 2)."""
    parts = [p for p in run_name.split("/")
             if p not in ("real_time", "manual_time") and not p.startswith("iterations:")]
    threads = 1
    if parts and parts[-1].startswith("threads:"):
        threads = int(parts.pop()[len("threads:"):])
    return "/".join(parts), threads


def floor_for(base, threads, by_key):
    """The floor measured on the same loop: same size and thread count if the
    case is a pair, else the single-threaded 10 MiB floor."""
    parts = base.split("/")
    if parts[0] == "pair" and len(parts) == 3:
        key = (f"pair/{FLOOR}/{parts[2]}", threads)
        if key in by_key:
            return key
    return (f"pair/{FLOOR}/10MiB", 1)


def table(path):
    context, cases = load_cases(path)
    by_key = {split(name): case for name, case in cases}
    caches = ", ".join(
        f"L{c['level']} {c['type'][0]} {c['size'] // 1024} KiB" for c in context.get("caches", []))
    print(f"context: {context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz ({caches}); "
          f"load average {', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}")
    if context.get("library_build_type") == "debug":
        print("note: this Google Benchmark library was built without NDEBUG (as Debian ships it);"
              " that affects its own bookkeeping, not the code measured")
    print("time/op: wall time / operations of all threads (the inverse of throughput), as the min\n"
          "  and the median of the repetitions: noise only adds time, so the min estimates the cost\n"
          "  and the median what a busy machine sees;\n"
          "x floor: min time/op / the bare atomic counter's min on the same loop (same size and\n"
          "  threads; for cases that are not pairs, the 1-thread 10 MiB floor);\n"
          "spread: coefficient of variation across the repetitions\n")
    header = (f"{'case':<34} {'x floor':>8} {'min':>10} {'median':>10} {'allocs/op':>9}"
              f" {'refused/op':>10} {'spread':>7}")
    print(header)
    print("-" * len(header))
    section = None
    for name, case in cases:
        base, threads = split(name)
        group = base.split("/")[0]
        title = {
            "pair": "try_acquire + release, " + (f"{threads} threads" if threads > 1 else "1 thread"),
            "refuse": "refused try_acquire, 1 thread",
            "policy": "policy.bytes_for over 4096 varied sizes, 1 thread",
            "grow_shrink": "try_grow + shrink on a held reservation, 1 thread",
            "handoff": "release -> blocked waiter running (one handoff, manual time)",
        }.get(group, group)
        if title != section:
            print(title)
            section = title
        label = "  " + base.split("/", 1)[1] if "/" in base else base
        if "error" in case or "min" not in case:
            print(f"{label:<34} error: {case.get('error', 'no result')}")
            continue
        floor = by_key.get(floor_for(base, threads, by_key), {}).get("min")
        ratio = f"{case['min'] / floor:.2f}x" if floor else "-"
        allocs = "-" if case.get("allocs") is None else f"{case['allocs']:g}"
        refused = "-" if case.get("refused") is None else f"{case['refused']:g}"
        spread = f"{100 * case['cv']:.0f}%" if "cv" in case else "-"
        print(f"{label:<34} {ratio:>8} {fmt_time(case['min']):>10} {fmt_time(case['median']):>10}"
              f" {allocs:>9} {refused:>10} {spread:>7}")

    print("\ntargets (this run; ratio of the mins, of the medians in brackets)")

    def get(base, threads=1):
        return by_key.get((base, threads), {})

    def check(label, num, den, ok, target):
        if "min" not in num or "min" not in den:
            return
        by_min, by_median = num["min"] / den["min"], num["median"] / den["median"]
        verdict = "" if ok is None else {(True, True): "met", (False, False): "MISSED"}.get(
            (ok(by_min), ok(by_median)), "borderline: min and median disagree")
        print(f"  {label:<46} {by_min:5.2f}x ({by_median:.2f}x)  {target:<13} {verdict}")

    check("1 thread, time per pair / atomic floor", get("pair/admit/10MiB"),
          get(f"pair/{FLOOR}/10MiB"), lambda r: r <= 2, "target <= 2x")
    check("2 threads, throughput / mutex + cond. variable", get("pair/mutex_cv/10MiB", 2),
          get("pair/admit/10MiB", 2), lambda r: r >= 2, "target >= 2x")
    check("8 threads, time per pair / atomic floor", get("pair/admit/10MiB", 8),
          get(f"pair/{FLOOR}/10MiB", 8), lambda r: r <= 1.5, "target <= 1.5x")
    admission = [c for n, c in cases if n.startswith(("pair/admit/", "grow_shrink/admit", "refuse/"))]
    worst = max((c.get("allocs") or 0 for c in admission), default=0)
    counted = any(c.get("allocs") is not None for c in admission)
    print(f"  {'allocations per admission (admit cases)':<46} {worst if counted else '-':>5}"
          f"            target 0      {('met' if worst == 0 else 'MISSED') if counted else 'not counted'}")
    slowest = max((get(f"refuse/{r}") for r in ("too_large", "no_memory", "no_slot")),
                  key=lambda c: c.get("min", 0))
    check("slowest refusal / admission", slowest, get("pair/admit/10MiB"), lambda r: r < 1,
          "must be < 1x")
    check("handoff latency / mutex + cond. variable", get("handoff/admit"),
          get("handoff/mutex_cv"), lambda r: r <= 1.2, "target <= 1.2x")


# Instructions per try_acquire + release pair that admit aims at, one call
# site or several (default tiered policy, 10 MiB, every feature on).
PAIR_INSTRUCTIONS = 60


def callgrind_total(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"report.py: no instruction total in {path}")


ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?):(.*?)(?: \[.*\])?$")


def by_source_file(path):
    """{basename: (instructions, {function names})} from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", path],
                         check=True, capture_output=True, text=True).stdout
    files = {}
    for line in out.splitlines():
        m = ANNOTATE_LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        count = int(m.group(1).replace(",", ""))
        source = os.path.basename(m.group(2))
        function = m.group(3).replace("(anonymous namespace)::", "")
        function = re.sub(r"\(.*", "", function).split("::")[-1]
        total, functions = files.get(source, (0, set()))
        files[source] = (total + count, functions | {function})
    return files


def callgrind(directory, n1, n2, impls):
    n1, n2 = int(n1), int(n2)
    per_pair = {}
    for impl in impls:
        a = callgrind_total(os.path.join(directory, f"callgrind.{impl}.{n1}"))
        b = callgrind_total(os.path.join(directory, f"callgrind.{impl}.{n2}"))
        per_pair[impl] = (b - a) / (n2 - n1)
    floor = per_pair.get("floor")
    print(f"instructions per try_acquire + release pair (callgrind, (Ir({n2}) - Ir({n1})) / {n2 - n1}):")
    for impl, count in per_pair.items():
        ratio = f"{count / floor:6.2f}x floor" if floor else ""
        print(f"  {impl:<20} {count:8.1f}  {ratio}")
    for impl in ("admit", "admit_sites"):
        if impl in per_pair:
            count = per_pair[impl]
            print(f"  target: {impl} <= {PAIR_INSTRUCTIONS} instructions per pair: {count:.1f}  "
                  f"{'met' if count <= PAIR_INSTRUCTIONS else 'MISSED'}")
    if "admit" in per_pair and floor:
        r = per_pair["admit"] / floor
        print(f"  target: admit <= 2x the floor in instructions: {r:.2f}x  {'met' if r <= 2 else 'MISSED'}")
        a = by_source_file(os.path.join(directory, f"callgrind.admit.{n1}"))
        b = by_source_file(os.path.join(directory, f"callgrind.admit.{n2}"))
        rows = []
        for source in set(a) | set(b):
            diff = (b.get(source, (0, set()))[0] - a.get(source, (0, set()))[0]) / (n2 - n1)
            if diff >= 0.5:
                functions = sorted(b.get(source, (0, set()))[1])
                rows.append((diff, source, functions))
        print("  where admit's instructions come from, per pair, by source file of the inlined code:")
        for diff, source, functions in sorted(rows, reverse=True):
            print(f"    {diff:6.1f}  {source:<20} (in {', '.join(functions)})")


def main(argv):
    if len(argv) >= 3 and argv[1] == "table":
        table(argv[2])
    elif len(argv) >= 5 and argv[1] == "callgrind":
        callgrind(argv[2], argv[3], argv[4], argv[5:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
