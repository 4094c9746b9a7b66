from tap_controlio.tap import TapControlio

TapControlio.cli()
