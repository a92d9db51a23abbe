"""The REPL prelude: the guest files every session's jailed REPL runs first, sent as one text.

The files are guest code -- never imported here, run on the guest interpreter -- kept apart by job:
repl_regex.py (grep's translator to ripgrep's dialect) ahead of repl_helpers.py (the toolbox the
model uses), whose grep() calls the translator. Imports nothing of the package.
"""

from pathlib import Path

GUEST_FILES = ("repl_regex.py", "repl_helpers.py")  # in this order: the helpers use the translator
PRELUDE = "\n\n".join((Path(__file__).with_name("guest") / name).read_text() for name in GUEST_FILES)
