"""pixelpilot: agent package."""
