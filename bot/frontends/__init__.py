"""Front-ends: each turns a platform's events into Invocations and Replies into messages."""
