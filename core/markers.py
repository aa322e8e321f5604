"""pluggy markers for peerkit: ``from peerkit import hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("peerkit")
hookspec = pluggy.HookspecMarker("peerkit")
