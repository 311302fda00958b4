from raydemand.cli import main

raise SystemExit(main())
