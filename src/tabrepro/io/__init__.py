"""Files on disk: outputs published atomically through a staging folder, and safe (skops) persistence."""
