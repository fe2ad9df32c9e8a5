"""The engine: plan, build and tear down objects, with their records, claims, lock and batches."""
