"""The bot's own HTTP server (aiohttp): the Telegram webhook and the health check mount here;
public pages and metrics belong here too. It imports nothing from the front-ends.
"""
