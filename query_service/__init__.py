"""The read side: HTTP queries over the read models, with read-your-writes waiting."""
