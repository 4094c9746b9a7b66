from tap_sessionreports.tap import TapSessionReports

TapSessionReports.cli()
