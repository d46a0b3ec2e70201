"""Brokers: one package each (Redis, NATS, RabbitMQ), with its transport and consumer."""
