"""The achievement sweep (EventBridge schedule): batches of members, resumable, stopping in
time before Lambda's limit; the next run continues from the saved cursor."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from pointsbot.community import achievements
from pointsbot.platform import runtime
from pointsbot.platform.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    def time_left_s() -> float:
        return context.get_remaining_time_in_millis() / 1000

    report = achievements.run_sweep(runtime.get_database(), time_left_s=time_left_s)
    metrics.add_metric(name="SweepMembers", unit=MetricUnit.Count, value=report.members_checked)
    metrics.add_metric(name="AchievementsGranted", unit=MetricUnit.Count, value=report.awards)
    logger.info("achievement sweep", extra={"report": report.__dict__})
    return {
        "sweep_id": report.sweep_id,
        "finished": report.finished,
        "batches": report.batches,
        "members_checked": report.members_checked,
        "awards": report.awards,
        "dms_queued": report.dms_queued,
        "seconds": round(report.seconds, 3),
    }
