"""Delivery: everything that sends or edits on a platform's clock. The outbox drain loop,
sender pacing under each platform's limits, live boards and broadcast progress messages.
It calls platforms through the callbacks a front-end passes in, never importing one.
"""
