"""``python -m gotor`` is the ``gotor`` command."""

import sys

from gotor.cli import main

sys.exit(main())
