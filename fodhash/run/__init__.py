"""A command's run: the sites it works on (the plan), and the protocol over them per platform."""
