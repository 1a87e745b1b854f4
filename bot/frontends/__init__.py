"""Front-ends, one module per platform: each turns its platform's events into Invocations
and Replies into messages. They reach commands only through the dispatcher, never
`handlers`, and never import one another.
"""
