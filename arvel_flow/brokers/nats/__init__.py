"""NATS JetStream: a stream per prefix, a durable consumer per queue."""
