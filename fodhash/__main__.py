"""`python -m fodhash`."""

from fodhash.entry import main

main()
