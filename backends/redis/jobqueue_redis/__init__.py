"""Redis backend for jobqueue (in progress: see the README's feature table)."""
