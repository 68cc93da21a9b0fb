from profiler._cli import main

raise SystemExit(main())
