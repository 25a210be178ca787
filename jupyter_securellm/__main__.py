"""`python -m jupyter_securellm` is the `jupyter-securellm` command (the git filter calls it this way)."""
import sys

from .cli import main

sys.exit(main())
