"""benchmarks.gil_handback prints one row per switch interval, with positive times."""

from __future__ import annotations

import sys

from benchmarks import gil_handback


def test_prints_a_row_per_switch_interval(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gil_handback", "--ops", "5", "--repeats", "1"])
    interval = sys.getswitchinterval()
    try:
        gil_handback.main()
    finally:
        sys.setswitchinterval(interval)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms |" in line[:12]]
    assert [row.split("|")[1].strip() for row in rows] == ["5 ms", "0.5 ms"]
    assert all(float(cell) > 0 for row in rows for cell in row.strip("| ").split("|")[1:])
