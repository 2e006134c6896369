"""SQS-triggered worker: runs deferred interactions and DM deliveries, reporting partial
batch failures so only the failed messages come back (ReportBatchItemFailures)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pointsbot.delivery.tasks import Task
from pointsbot.ops.worker import UnknownTask, run_task, set_deadline
from pointsbot.platform.observability import logger, metrics

# A batch whose every record failed is reported like any other (all items back to SQS), not
# raised: raising would count as a failed invocation and set off the worker-errors alarm.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _record(record: SQSRecord) -> None:
    try:
        task = Task.from_json(record.body)
    except ValueError:
        # A message that can never be read is dropped (logged), not retried forever.
        logger.error("unreadable task dropped", extra={"message_id": record.message_id})
        return
    try:
        run_task(task)
    except UnknownTask:
        logger.error("unknown task kind dropped", extra={"kind": task.kind, "message_id": record.message_id})


@metrics.log_metrics  # flushes what the tasks recorded (DmsSent, DmsFailed, ...) once per invocation
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    set_deadline(remaining() if callable(remaining) else None)
    try:
        result = process_partial_response(
            event=event, record_handler=_record, processor=processor, context=context
        )
    finally:
        set_deadline(None)
    records = len(event.get("Records") or [])
    metrics.add_metric(name="TasksRun", unit=MetricUnit.Count, value=records)
    metrics.add_metric(
        name="TasksFailed", unit=MetricUnit.Count, value=len(result.get("batchItemFailures", []))
    )
    return result
