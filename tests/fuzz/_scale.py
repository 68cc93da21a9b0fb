"""How much the fuzz suite explores: 1 in the default suite (about 40 s in all), FUZZ_SCALE=N times the
examples for a release run (`make fuzz-release` runs it at 20)."""
import os

SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
