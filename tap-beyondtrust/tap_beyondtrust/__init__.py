"""tap-beyondtrust: the BeyondTrust Remote Support reporting API as Singer streams."""
