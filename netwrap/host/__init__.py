"""Host access: the runners (the only place a process starts), SSH, sandboxes, parsers and observation."""
