"""coalition-bot: one chat bot for a coalition campaign on Discord, Telegram and the console."""
