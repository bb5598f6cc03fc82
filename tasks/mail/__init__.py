"""Email: a directory of recipients, one message builder per event, a transactional outbox, one
SMTP sender, the delivery loop that drains the outbox, and a loopback sink for the demo.

Nothing here imports Prefect: the delivery flow (`flows/outbox_delivery.py`) wraps
`tasks.mail.delivery.deliver_pending` through one task.
"""
