from relayfleet.cli.main import main

raise SystemExit(main())
