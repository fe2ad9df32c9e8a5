"""``python -m netwrap``."""

from netwrap.cli.main import main

raise SystemExit(main())
