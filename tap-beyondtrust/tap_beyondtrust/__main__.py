from tap_beyondtrust.tap import TapBeyondTrust

TapBeyondTrust.cli()
