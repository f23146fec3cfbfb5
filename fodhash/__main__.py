"""`python -m fodhash`."""

from fodhash.cli import main

main()
