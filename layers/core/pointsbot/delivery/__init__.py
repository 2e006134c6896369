"""Work handed on to run later: the task queue (SQS in AWS, in-process locally) and the DM
outbox with its paced delivery to Discord. Knows nothing of points."""
