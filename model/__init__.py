"""pixelpilot: model package."""
