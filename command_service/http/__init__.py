"""The command service's HTTP face: thin litestar controllers in front of the command bus."""
