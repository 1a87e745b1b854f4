"""coalition-bot: one command core behind Telegram, Discord and a console.

Rooms, from the top (a module imports only from its own room or the rooms below it):
app → frontends → web | delivery | schedule | handlers → services → core → storage.
"""
