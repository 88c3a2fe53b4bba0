"""``python -m selfheal_cli``: the ``selfheal`` command without its console script."""

import sys

from selfheal_cli.main import main

sys.exit(main())
