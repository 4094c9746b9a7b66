"""Singer tap for Fudo PAM reports (API v2)."""
