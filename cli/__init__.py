"""peerkit's command line (console script ``peerkit``)."""
