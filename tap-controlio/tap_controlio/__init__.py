"""tap-controlio: the Controlio API 1.1 as Singer streams."""
