"""`python -m fota_callbacks`: the `fota-callbacks` command line."""

import sys

from .cli import main

sys.exit(main())
