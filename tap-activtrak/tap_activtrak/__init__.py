"""Singer tap for the ActivTrak Live Data API."""
