"""`python -m annotator` works like the `annotator` command."""

import sys

from annotator.cli import main

sys.exit(main())
