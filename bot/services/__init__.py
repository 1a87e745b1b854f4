"""The command core that handlers are given: the Services container, the command registry,
the dispatcher, the campaign and its ladder, and `render` — the texts that handlers,
delivery and front-ends all show. Below handlers: nothing here imports them.
"""
