"""python -m profiler nsys: finding nsys, the command lines, and the whole pipeline against a fake
``nsys`` (a shell script that logs its argv, runs the program and writes a small export)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import orjson
import pytest

from profiler._cli import main
from profiler.nsys import run as nsys_run
from profiler.nsys.run import NsysError, export_command, find_nsys, profile_command

from .test_nsys_import import expected_trace, make_export

FAKE_NSYS = r"""#!/bin/sh
(IFS='	'; printf '%s\n' "$*") >> "$FAKE_NSYS_LOG"
cmd=$1; shift
case "$cmd" in
profile)
  out=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --output=*) out="${1#--output=}"; shift ;;
      -*) shift ;;
      *) break ;;
    esac
  done
  "$@"; rc=$?
  [ -n "$FAKE_NSYS_NO_REPORT" ] || printf 'fake report' > "$out.nsys-rep"
  exit $rc ;;
export)
  for a in "$@"; do case "$a" in --output=*) out="${a#--output=}" ;; esac; done
  [ -n "$FAKE_NSYS_EXPORT_FAILS" ] && { echo "fake export: cannot read report" >&2; exit 4; }
  cp "$FAKE_NSYS_DB" "$out" ;;
esac
"""

PROGRAM = ("import os, sys; open(sys.argv[1], 'w').write(os.environ.get('TENSORLIB_NVTX', 'unset')); "
           "sys.exit(int(sys.argv[2]))")


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def nsys_fake(tmp_path, monkeypatch):
    """A fake nsys first on PATH; returns a reader of its logged invocations."""
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "nsys", FAKE_NSYS)
    log = tmp_path / "nsys.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("NSYS", raising=False)
    monkeypatch.delenv("TENSORLIB_NVTX", raising=False)
    monkeypatch.setenv("FAKE_NSYS_LOG", str(log))
    monkeypatch.setenv("FAKE_NSYS_DB", str(make_export(tmp_path / "canned.sqlite")))
    monkeypatch.chdir(tmp_path)
    return lambda: [line.split("\t") for line in log.read_text().splitlines()]


def test_profile_command_defaults():
    assert profile_command("/x/nsys", "out", [], ["python", "train.py", "--lr", "0.1"]) == [
        "/x/nsys", "profile", "--trace=cuda,nvtx,osrt", "--capture-range=cudaProfilerApi",
        "--force-overwrite=true", "--output=out", "python", "train.py", "--lr", "0.1",
    ]


@pytest.mark.parametrize(
    "options, dropped",
    [
        (["--trace=cuda"], "--trace=cuda,nvtx,osrt"),
        (["-t", "nvtx"], "--trace=cuda,nvtx,osrt"),
        (["-tcuda"], "--trace=cuda,nvtx,osrt"),
        (["--capture-range=none"], "--capture-range=cudaProfilerApi"),
        (["-c", "nvtx"], "--capture-range=cudaProfilerApi"),
        (["--force-overwrite=false"], "--force-overwrite=true"),
    ],
)
def test_profile_command_options_override_defaults(options, dropped):
    command = profile_command("nsys", "o", options, ["python", "t.py"])
    assert dropped not in command
    assert command[-4:] == [*options[-1:], "--output=o", "python", "t.py"][-4:]
    assert command.index(options[0]) < command.index("--output=o")


def test_export_command():
    assert export_command("nsys", Path("r.nsys-rep"), Path("r.sqlite")) == [
        "nsys", "export", "--type=sqlite", "--force-overwrite=true", "--output=r.sqlite", "r.nsys-rep",
    ]


def test_find_nsys_prefers_env_var_then_path(tmp_path):
    mine = executable(tmp_path / "custom" / "nsys", "#!/bin/sh\n")
    on_path = executable(tmp_path / "bin" / "nsys", "#!/bin/sh\n")
    assert find_nsys({"NSYS": str(mine), "PATH": str(on_path.parent)}) == str(mine)
    assert find_nsys({"PATH": str(on_path.parent)}) == str(on_path)


def test_find_nsys_bad_env_var(tmp_path):
    with pytest.raises(NsysError, match=r"NSYS=.*/missing is not an executable file"):
        find_nsys({"NSYS": str(tmp_path / "missing"), "PATH": ""})


def test_find_nsys_in_install_folders_newest_first(tmp_path, monkeypatch):
    for version in ("2023.4.1", "2024.10.2", "2024.2.3"):
        executable(tmp_path / "opt" / version / "bin" / "nsys", "#!/bin/sh\n")
    monkeypatch.setattr(nsys_run, "INSTALL_FOLDERS", (str(tmp_path / "opt" / "*" / "bin"),))
    assert find_nsys({"PATH": str(tmp_path / "empty")}) == str(tmp_path / "opt" / "2024.10.2" / "bin" / "nsys")


def test_nsys_not_found_error_names_places_and_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nsys_run, "INSTALL_FOLDERS", (str(tmp_path / "nothing" / "*"),))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("NSYS", raising=False)
    assert main(["nsys", "--", sys.executable, "-c", "pass"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("profiler nsys: error: nsys (Nsight Systems CLI) not found in $NSYS, PATH, ")
    assert "install Nsight Systems" in err and "set NSYS=/path/to/nsys" in err


def test_whole_pipeline_with_fake_nsys(nsys_fake, tmp_path, capsys):
    envfile = tmp_path / "env.txt"
    rc = main(["nsys", "-o", "run1", "--sample=none", "--", sys.executable, "-c", PROGRAM, str(envfile), "0"])
    assert rc == 0, capsys.readouterr().err
    assert nsys_fake() == [  # argv after the program name, as the fake nsys logged it
        ["profile", "--trace=cuda,nvtx,osrt", "--capture-range=cudaProfilerApi", "--force-overwrite=true",
         "--sample=none", "--output=run1", sys.executable, "-c", PROGRAM, str(envfile), "0"],
        ["export", "--type=sqlite", "--force-overwrite=true", "--output=run1.sqlite", "run1.nsys-rep"],
    ]
    assert envfile.read_text() == "1"  # the profiled script saw TENSORLIB_NVTX=1
    assert orjson.loads((tmp_path / "run1.pt.trace.json").read_bytes()) == expected_trace("run1.pt.trace.json")
    assert capsys.readouterr().out == "report run1.nsys-rep, export run1.sqlite, trace run1.pt.trace.json (22 events)\n"


def test_program_exit_status_is_passed_through(nsys_fake, tmp_path, capsys):
    rc = main(["nsys", "--", sys.executable, "-c", PROGRAM, str(tmp_path / "env.txt"), "3"])
    assert rc == 3
    assert (tmp_path / "nsys-profile.pt.trace.json").is_file()  # the capture is still converted
    assert "the profiled program exited with status 3" in capsys.readouterr().err


def test_no_report_explains_capture_range(nsys_fake, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_NSYS_NO_REPORT", "1")
    assert main(["nsys", "--", sys.executable, "-c", "pass"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("profiler nsys: error: nsys profile (exit status 0) wrote no report nsys-profile.nsys-rep; ")
    assert "cuda_profiler_range()" in err and "--capture-range=none" in err


def test_stale_report_is_not_reused(nsys_fake, tmp_path, monkeypatch, capsys):
    (tmp_path / "nsys-profile.nsys-rep").write_text("old")
    monkeypatch.setenv("FAKE_NSYS_NO_REPORT", "1")
    assert main(["nsys", "--capture-range=none", "--", sys.executable, "-c", "pass"]) == 1
    err = capsys.readouterr().err
    assert "wrote no report" in err and "cuda_profiler_range" not in err


def test_export_failure_is_reported(nsys_fake, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_NSYS_EXPORT_FAILS", "1")
    assert main(["nsys", "--", sys.executable, "-c", "pass"]) == 1
    assert capsys.readouterr().err == (
        "profiler nsys: error: nsys export of nsys-profile.nsys-rep failed (exit status 4): "
        "fake export: cannot read report\n"
    )


def test_usage_errors(capsys):
    assert main(["nsys", sys.executable, "train.py"]) == 2
    assert "put the program after `--`" in capsys.readouterr().err
    assert main(["nsys", "--"]) == 1
    assert "no program to profile" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m profiler {import-nsys,nsys,run} ...\n")


def test_module_entry_point(tmp_path):
    import subprocess

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "profiler", "import-nsys", str(tmp_path / "none.sqlite")],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == f"profiler import-nsys: error: {str(tmp_path / 'none.sqlite')!r}: no such file\n"
