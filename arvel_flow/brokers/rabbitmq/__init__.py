"""RabbitMQ: quorum queues per queue, delays through a dead-letter wait queue."""
