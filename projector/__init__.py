"""The projector: reads the Redis Stream in a consumer group and keeps the read models."""
