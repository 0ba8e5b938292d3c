"""`python -m app` opens the studio; `python -m app VERB ...` runs a command-line verb."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
