from tap_activtrak.tap import TapActivTrak

TapActivTrak.cli()
