"""Redis: streams per queue, delays in sorted sets, heartbeats, reclaiming."""
