"""/metrics: the names the server exports and a tolerant parser of its Prometheus text."""

from __future__ import annotations

import re
from typing import Optional

from e2e_support import CaseFailure

REASONS = ("too_large", "no_slot", "no_memory", "queue_full", "timeout", "cancelled", "closed",
           "pressure")
GAUGES = ("admit_bytes_in_use", "admit_bytes_budget", "admit_slots_in_use", "admit_slots",
          "admit_waiters", "admit_admitted_total", "admit_double_releases_total")

METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?\s*$")
METRIC_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


class Metrics:
    """A tolerant Prometheus text parser: '#' lines and blank lines are ignored."""

    def __init__(self, text: str):
        self.text = text
        self.values: dict[tuple[str, frozenset], float] = {}
        self.unparsed: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = METRIC_LINE.match(line)
            if not match:
                self.unparsed.append(line)
                continue
            labels = frozenset(METRIC_LABEL.findall(match.group(2) or ""))
            try:
                value = float(match.group(3))
            except ValueError:
                self.unparsed.append(line)
                continue
            self.values[(match.group(1), labels)] = value

    def get(self, name: str, **labels: str) -> Optional[float]:
        return self.values.get((name, frozenset(labels.items())))

    def __getitem__(self, name: str) -> float:
        value = self.get(name)
        if value is None:
            raise CaseFailure(f"/metrics has no '{name}'; got:\n{self.text}")
        return value

    def rejected(self, reason: str) -> float:
        value = self.get("admit_rejected_total", reason=reason)
        if value is None:
            raise CaseFailure(f"/metrics has no 'admit_rejected_total{{reason=\"{reason}\"}}'; "
                              f"got:\n{self.text}")
        return value

    def in_use(self) -> tuple[float, float]:
        return self["admit_bytes_in_use"], self["admit_slots_in_use"]

    def summary(self) -> str:
        parts = [f"{name}={_num(self.get(name))}" for name in GAUGES if self.get(name) is not None]
        rejected = [f"{r}={_num(self.get('admit_rejected_total', reason=r))}" for r in REASONS
                    if self.get("admit_rejected_total", reason=r)]
        return " ".join(parts) + (" rejected{" + ",".join(rejected) + "}" if rejected else "")


def _num(value: Optional[float]) -> str:
    return str(int(value)) if value is not None and value == int(value) else str(value)
