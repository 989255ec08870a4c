"""`python -m blockwatch.agent`: the agent without cli.py (which loads the full config)."""

import sys

from blockwatch.agent.main import main

sys.exit(main())
