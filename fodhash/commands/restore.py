"""`fodhash restore`: undo the edits of a fodhash run that was killed, and say so."""

from __future__ import annotations

from rich.console import Console

from fodhash.config import Config
from fodhash.files.place import open_place


def restore(config: Config, *, err: Console, wait: bool) -> int:
    """Opening the repository replays the journal a killed in-place run left (every command
    does this first, fodhash.files.place.open_place); restore does only that."""

    def say(text: str) -> None:
        err.print(text, markup=False, highlight=False)

    with open_place(config.root, wait=wait, say=say, copy=False):
        pass
    say(f"{config.root}: no edit of a killed run is left")
    return 0
