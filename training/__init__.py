"""pixelpilot: training package."""
