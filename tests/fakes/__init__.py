"""Test fakes for the platforms the bot talks to."""
