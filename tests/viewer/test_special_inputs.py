"""Standard input (`-`) and, when asked for, FIFOs and devices as traces: read to a byte limit, never
past it, and refused with one line otherwise."""

import gzip
import io
import json
import os
import sys
import threading
import types

import pytest

from viewer.__main__ import main

EVENTS = [{"ph": "X", "name": "stdin_op", "cat": "c", "pid": 1, "tid": 1, "ts": 0, "dur": 5}]
DOC = json.dumps(EVENTS).encode()


def feed(monkeypatch, data):
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


@pytest.mark.parametrize("data", [DOC, gzip.compress(DOC, mtime=0), b"  \n" + DOC],
                         ids=["plain", "gzip", "leading-blanks"])     # ids: xdist workers must collect alike
def test_summary_reads_standard_input(monkeypatch, capsys, data):
    feed(monkeypatch, data)
    assert main(["summary", "-", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["stdin_op"]


def test_standard_input_over_the_limit_is_refused(monkeypatch, capsys):
    feed(monkeypatch, DOC)
    assert main(["summary", "-", "--max-input-bytes", str(len(DOC) - 1)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "standard input" in err and "--max-input-bytes" in err
    feed(monkeypatch, DOC)
    assert main(["summary", "-", "--max-input-bytes", str(len(DOC))]) == 0


def test_diff_takes_standard_input_once(monkeypatch, capsys, tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(DOC)
    feed(monkeypatch, DOC)
    assert main(["diff", str(p), "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["delta_total_ns"] == 0
    assert main(["diff", "-", "-", "--json"]) == 1
    assert "only one" in capsys.readouterr().err


def test_tui_refuses_standard_input(capsys):
    assert main(["-"]) == 1
    assert "standard input" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_only_when_allowed(tmp_path, capsys):
    fifo = str(tmp_path / "pipe.json")
    os.mkfifo(fifo)
    assert main(["summary", fifo]) == 1
    err = capsys.readouterr().err
    assert "named pipe" in err and "--allow-special-files" in err

    def write():
        with open(fifo, "wb") as f:
            f.write(DOC)

    t = threading.Thread(target=write)
    t.start()
    try:
        assert main(["summary", fifo, "--allow-special-files", "--json"]) == 0
    finally:
        t.join(10)
    assert json.loads(capsys.readouterr().out)[0]["name"] == "stdin_op"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_endless_device_stops_at_the_limit(capsys):
    assert main(["summary", "/dev/zero", "--allow-special-files", "--max-input-bytes", "100000"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "100000" in err


def test_bad_limit_is_a_usage_error(monkeypatch, capsys):
    feed(monkeypatch, DOC)
    assert main(["summary", "-", "--max-input-bytes", "0"]) == 1
    assert "--max-input-bytes" in capsys.readouterr().err
