"""``python -m netwrap``."""

from netwrap.cli import main

raise SystemExit(main())
