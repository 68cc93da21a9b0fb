"""Op-by-op comparison of two traces (like HTA's trace diff), built on the same ops table.

Rows are matched on (category, name); an op present in only one trace is "new" or "vanished".
Ratios are B/A so that > 1 reads as "slower in B".
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
    count_a: int
    count_b: int
    total_a: int
    total_b: int
    self_a: int
    self_b: int

    @property
    def status(self) -> str:
        if self.count_a == 0:
            return "new"
        if self.count_b == 0:
            return "vanished"
        return ""

    @property
    def delta_total(self) -> int:
        return self.total_b - self.total_a

    @property
    def delta_self(self) -> int:
        return self.self_b - self.self_a

    @property
    def ratio(self) -> float | None:
        return self.total_b / self.total_a if self.total_a and self.count_b else None


def diff_tables(a: OpsTable, b: OpsTable) -> list[DiffRow]:
    rows: dict[tuple[str, str], DiffRow] = {}
    for i in range(len(a)):
        rows[(a.cat[i], a.name[i])] = DiffRow(a.name[i], a.cat[i], int(a.count[i]), 0,
                                             int(a.total[i]), 0, int(a.self[i]), 0)
    for i in range(len(b)):
        key = (b.cat[i], b.name[i])
        row = rows.setdefault(key, DiffRow(b.name[i], b.cat[i], 0, 0, 0, 0, 0, 0))
        row.count_b, row.total_b, row.self_b = int(b.count[i]), int(b.total[i]), int(b.self[i])
    return sorted(rows.values(), key=lambda r: (-abs(r.delta_total), r.cat, r.name))


def _signed(ns: int) -> str:
    return ("+" if ns > 0 else "") + fmt_ns(ns) if ns else "0"


def format_diff(rows: list[DiffRow], limit: int | None = None, width_name: int = 44) -> str:
    head = (f"{'name':<{width_name}} {'cat':<12} {'count A':>8} {'count B':>8} {'total A':>10} "
            f"{'total B':>10} {'Δ total':>10} {'ratio':>7} {'self A':>10} {'self B':>10} {'Δ self':>10}  status")
    lines = [head, "-" * len(head)]
    for r in rows[:limit] if limit else rows:
        name = literal(r.name[: width_name + 1])
        if len(name) > width_name:
            name = name[: width_name - 1] + "…"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(
            f"{name:<{width_name}} {literal(r.cat[:12])[:12]:<12} {r.count_a:>8} {r.count_b:>8} "
            f"{fmt_ns(r.total_a):>10} "
            f"{fmt_ns(r.total_b):>10} {_signed(r.delta_total):>10} {ratio:>7} {fmt_ns(r.self_a):>10} "
            f"{fmt_ns(r.self_b):>10} {_signed(r.delta_self):>10}  {r.status}"
        )
    new = sum(r.status == "new" for r in rows)
    gone = sum(r.status == "vanished" for r in rows)
    lines.append(f"{len(rows)} ops; {new} new in B, {gone} vanished from A")
    return "\n".join(lines)


def diff_dicts(rows: list[DiffRow]) -> list[dict[str, str | int | float | None]]:
    return [dict(name=r.name, cat=r.cat, count_a=r.count_a, count_b=r.count_b, total_a_ns=r.total_a,
                 total_b_ns=r.total_b, delta_total_ns=r.delta_total, ratio=r.ratio, self_a_ns=r.self_a,
                 self_b_ns=r.self_b, delta_self_ns=r.delta_self, status=r.status) for r in rows]
