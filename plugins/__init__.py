"""Built-in peerkit plugins; each is registered exactly like a third-party plugin."""
