from blockwatch.cli import main

raise SystemExit(main())
