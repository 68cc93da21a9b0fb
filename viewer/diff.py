"""Op-by-op comparison of two traces (like HTA's trace diff), built on the same ops table.

Rows are matched on (category, name); an op present in only one trace is "new" or "vanished".
Ratios are B/A so that > 1 reads as "slower in B". Steps are one `ProfilerStep*` row (never a new op
per step number), and when the two traces hold different numbers of steps every count and time is
per step (the totals divided by each trace's step count), so a 20-step and a 40-step run of the same
loop compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeio import literal

from .summary import OpsTable
from .text import fmt_ns


@dataclass
class DiffRow:
    name: str
    cat: str
    count_a: float
    count_b: float
    total_a: float
    total_b: float
    self_a: float
    self_b: float

    @property
    def status(self) -> str:
        if self.count_a == 0:
            return "new"
        if self.count_b == 0:
            return "vanished"
        return ""

    @property
    def delta_total(self) -> float:
        return self.total_b - self.total_a

    @property
    def delta_self(self) -> float:
        return self.self_b - self.self_a

    @property
    def ratio(self) -> float | None:
        return self.total_b / self.total_a if self.total_a and self.count_b else None


def per_step(steps_a: int, steps_b: int) -> bool:
    """Compare per step: both traces have steps, and not as many."""
    return bool(steps_a and steps_b and steps_a != steps_b)


def diff_tables(a: OpsTable, b: OpsTable, steps_a: int = 0, steps_b: int = 0) -> list[DiffRow]:
    """With per_step(steps_a, steps_b), counts and times are divided by each trace's step count."""
    da, db = (steps_a, steps_b) if per_step(steps_a, steps_b) else (1, 1)
    rows: dict[tuple[str, str], DiffRow] = {}
    for i in range(len(a)):
        rows[(a.cat[i], a.name[i])] = DiffRow(a.name[i], a.cat[i], int(a.count[i]) / da, 0,
                                             int(a.total[i]) / da, 0, int(a.self[i]) / da, 0)
    for i in range(len(b)):
        key = (b.cat[i], b.name[i])
        row = rows.setdefault(key, DiffRow(b.name[i], b.cat[i], 0, 0, 0, 0, 0, 0))
        row.count_b, row.total_b, row.self_b = (int(b.count[i]) / db, int(b.total[i]) / db,
                                                int(b.self[i]) / db)
    return sorted(rows.values(), key=lambda r: (-abs(r.delta_total), r.cat, r.name))


def fmt_count(c: float) -> str:
    return f"{c:.0f}" if float(c).is_integer() else f"{c:.2f}"


def _signed(ns: float) -> str:
    return ("+" if ns > 0 else "") + fmt_ns(ns) if ns else "0"


def heading(steps_a: int, steps_b: int) -> str:
    """What the numbers are: whole traces, or per step."""
    if per_step(steps_a, steps_b):
        return (f"A has {steps_a} steps, B {steps_b}: counts and times are per step "
                f"(each trace's totals divided by its step count)")
    return ""


def format_diff(rows: list[DiffRow], limit: int | None = None, width_name: int = 44,
                steps: tuple[int, int] = (0, 0)) -> str:
    head = (f"{'name':<{width_name}} {'cat':<12} {'count A':>8} {'count B':>8} {'total A':>10} "
            f"{'total B':>10} {'Δ total':>10} {'ratio':>7} {'self A':>10} {'self B':>10} {'Δ self':>10}  status")
    lines = [head, "-" * len(head)]
    note = heading(*steps)
    if note:
        lines.insert(0, note)
    for r in rows[:limit] if limit else rows:
        name = literal(r.name[: width_name + 1])
        if len(name) > width_name:
            name = name[: width_name - 1] + "…"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(
            f"{name:<{width_name}} {literal(r.cat[:12])[:12]:<12} {fmt_count(r.count_a):>8} {fmt_count(r.count_b):>8} "
            f"{fmt_ns(r.total_a):>10} "
            f"{fmt_ns(r.total_b):>10} {_signed(r.delta_total):>10} {ratio:>7} {fmt_ns(r.self_a):>10} "
            f"{fmt_ns(r.self_b):>10} {_signed(r.delta_self):>10}  {r.status}"
        )
    new = sum(r.status == "new" for r in rows)
    gone = sum(r.status == "vanished" for r in rows)
    lines.append(f"{len(rows)} ops; {new} new in B, {gone} vanished from A")
    return "\n".join(lines)


def diff_dicts(rows: list[DiffRow]) -> list[dict[str, str | int | float | None]]:
    """Per-step numbers (see diff_tables) stay fractional; whole-trace ones are integers."""
    return [dict(name=r.name, cat=r.cat, count_a=r.count_a, count_b=r.count_b, total_a_ns=r.total_a,
                 total_b_ns=r.total_b, delta_total_ns=r.delta_total, ratio=r.ratio, self_a_ns=r.self_a,
                 self_b_ns=r.self_b, delta_self_ns=r.delta_self, status=r.status) for r in rows]
