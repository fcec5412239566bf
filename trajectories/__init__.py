"""pixelpilot: trajectories package."""
