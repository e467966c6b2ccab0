"""kiln (placeholder until the package branch lands; kiln.gs needs nothing from here)."""
