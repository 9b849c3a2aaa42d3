from pipelined.cli import main

raise SystemExit(main())
