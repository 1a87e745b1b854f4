"""Scheduling: the APScheduler triggers that turn the campaign's ladder and tally slots into
outbox rows. The database holds what is due; this room only wakes up and records it.
"""
