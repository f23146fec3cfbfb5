"""`python -m fodhash`."""

from fodhash.entry import run

run()
