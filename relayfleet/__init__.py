"""relayfleet: the `gh fleet` control plane for fleets of always-on Claude Code agents."""

__version__ = "0.1.0"
