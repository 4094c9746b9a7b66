from tap_ekran.tap import TapEkran

TapEkran.cli()
