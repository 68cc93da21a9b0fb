"""A fork while another thread holds the dispatcher's registry lock: the child can still register and
remove hooks (the profiler does so in every forked child) instead of hanging forever."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, threading, time, warnings
warnings.simplefilter("ignore")
import tensorlib.dispatch as d
import tensorlib._hooks as registry     # the hook registry's layer holds the lock
held = threading.Event()
def hold():
    with registry._lock:
        held.set()
        time.sleep(1.0)
threading.Thread(target=hold).start()
held.wait()
pid = os.fork()
if pid == 0:
    h = d.Hook()
    d.add_hook(h)
    d.remove_hook(h)
    os._exit(7)
_, status = os.waitpid(pid, 0)
print(os.WEXITSTATUS(status))
"""


def test_forked_child_does_not_inherit_a_held_lock():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "7", r.stderr
