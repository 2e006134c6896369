"""Running the bot: the worker's task table, the keep-alive and the deploy hooks. Composes
the other areas; nothing in pointsbot imports it."""
