from local_stack.cli import main

raise SystemExit(main())
