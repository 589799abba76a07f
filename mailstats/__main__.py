from mailstats.cli import main

raise SystemExit(main())
