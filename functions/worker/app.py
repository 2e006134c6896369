"""SQS-triggered worker: runs deferred interactions and DM deliveries, reporting partial
batch failures so only the failed messages come back (ReportBatchItemFailures)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pointsbot.delivery.tasks import Task
from pointsbot.ops.worker import MAX_RECEIVES, UnknownTask, run_task, set_deadline
from pointsbot.platform.observability import logger, metrics


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1


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
    except Exception:
        receives = _receives(record)
        if receives >= MAX_RECEIVES:
            # SQS moves it to the dead-letter queue now (the dead-letters alarm); say which and why.
            logger.exception("task failed its last try and goes to the dead-letter queue",
                             extra={"kind": task.kind, "message_id": record.message_id, "receives": receives})  # fmt: skip
            metrics.add_metric(name="TasksDeadLettered", unit=MetricUnit.Count, value=1)
        else:
            logger.warning("task failed; SQS delivers it again", exc_info=True,
                           extra={"kind": task.kind, "message_id": record.message_id, "receives": receives})  # fmt: skip
        raise


def _flush_metrics() -> None:
    # Not @metrics.log_metrics: a metrics error after the tasks ran must not fail the batch, or
    # SQS would run tasks again that are done (the local runtime's worker threads share the
    # metric set, which Powertools does not lock).
    try:
        metrics.flush_metrics()
    except Exception:
        logger.exception("could not publish the worker's metrics")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    set_deadline(remaining() if callable(remaining) else None)
    try:
        # A processor per invocation: it keeps the batch's results, and the local runtime runs
        # several invocations at once. A batch whose every record failed is reported like any
        # other (all items back to SQS), not raised: raising would count as a failed invocation
        # and set off the worker-errors alarm.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        result = process_partial_response(
            event=event, record_handler=_record, processor=processor, context=context
        )
        records = len(event.get("Records") or [])
        metrics.add_metric(name="TasksRun", unit=MetricUnit.Count, value=records)
        metrics.add_metric(
            name="TasksFailed", unit=MetricUnit.Count, value=len(result.get("batchItemFailures", []))
        )
        return result
    finally:
        set_deadline(None)
        _flush_metrics()
