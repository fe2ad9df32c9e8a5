"""Topologies: the model, its files, what it becomes (compose), apply/status, graphs, clusters, labs."""
