"""The run workflow: one automation firing on one event. Reads like the seed's rules, nothing else:
check the trigger conditions, then each step top to bottom (its own `when`, the action with retries, a
record of what happened), durable delays, and a stop when the automation was switched off meanwhile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.errors import NON_RETRYABLE_TYPES
    from models.definitions import ActionStep, DelayStep
    from models.messages import (
        DelayEnded,
        RunInput,
        RunOutcome,
        RunRecord,
        StepInput,
        StepOutcome,
        StepPlan,
        StepRecord,
    )
    from workflows.conditions import evaluate, explain_failure

COMPANY_ID = SearchAttributeKey.for_int("CrmCompanyId")
AUTOMATION_ID = SearchAttributeKey.for_int("CrmAutomationId")
ENTITY = SearchAttributeKey.for_keyword("CrmEntity")
RECORD_ID = SearchAttributeKey.for_int("CrmRecordId")
TRIGGER_ACTION = SearchAttributeKey.for_keyword("CrmTriggerAction")
RUN_STATUS = SearchAttributeKey.for_keyword("CrmRunStatus")
SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    COMPANY_ID, AUTOMATION_ID, ENTITY, RECORD_ID, TRIGGER_ACTION, RUN_STATUS]

#: Bookkeeping (run history) is retried until the database is back; it must not be lost.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1),
                                maximum_interval=timedelta(seconds=30))
#: An action: transient faults retried with backoff for up to 10 minutes, business errors fail at once.
ACTION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=1), non_retryable_error_types=NON_RETRYABLE_TYPES)
ACTION_DEADLINE = timedelta(minutes=10)
#: The reason a run with a failed step records (test runs predict it in the same words).
STEP_FAILED_REASON = "a step failed; later steps still ran"

#: Engine metrics, recorded through the workflow's replay-safe meter (nothing is counted twice on replay).
RUNS_METRIC = "crm_automation_runs"
STEP_FAILURES_METRIC = "crm_automation_step_failures"
FIRST_STEP_LATENCY_METRIC = "crm_automation_event_to_first_step_seconds"

#: Patches, newest last (README "Upgrading"). Each guards a change of the commands this workflow issues, so runs
#: started before it replay the old path; remove the old path only once no run from before it can be open.
#: v0.2: after a delay one local activity checks the automation and records the step (one transaction instead of
#: two), and a deleted automation is named as such in the stop reason.
RESUME_IN_ONE_TRANSACTION = "resume-after-delay-in-one-transaction"


# Not sandboxed: every run would otherwise re-import this module in a fresh sandbox, a quarter of the
# worker's CPU per run (bench/throughput.py). The module imports only deterministic code (pydantic models,
# pure condition evaluation) and the replay tests over recorded histories guard its determinism.
@workflow.defn(name="AutomationRun", sandboxed=False)
class AutomationRunWorkflow:
    def __init__(self) -> None:
        self._status = "running"
        self._steps: list[str] = []

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return {"status": self._status, "steps": self._steps}

    @workflow.run
    async def run(self, run: RunInput) -> RunOutcome:
        definition = run.definition
        event = run.event
        run_id = workflow.info().workflow_id
        self._steps = ["pending"] * len(definition.steps)

        record = RunRecord(run_id=run_id, automation_id=run.automation_id,
                           automation_version=run.automation_version, automation_name=definition.name,
                           event=event, status="running",
                           steps=[StepPlan(kind="delay") if isinstance(s, DelayStep)
                                  else StepPlan(kind="action", action=s.action) for s in definition.steps])
        if run.stop_reason:
            record.steps = []
            return await self._finish(record, "stopped", run.stop_reason)
        verdict = evaluate(definition.conditions, event.state, event.previous if event.action == "updated" else None)
        record.conditions = verdict
        if not verdict["held"]:
            record.steps = []  # nothing was going to run: no step rows
            return await self._finish(record, "skipped", explain_failure(verdict))
        await self._bookkeep("record_run", record, "Run started")

        if definition.steps:
            # From the change to this run's first step: the engine's pick-up latency, backlog included.
            workflow.metric_meter().create_histogram_timedelta(
                FIRST_STEP_LATENCY_METRIC, "From an entity event to its run's first step").record(
                max(workflow.now() - event.occurred_at, timedelta(0)))
        failed = False
        for index, step in enumerate(definition.steps):
            if isinstance(step, DelayStep):
                stop_reason = await self._wait(run, run_id, index, step)
                if stop_reason:
                    return await self._finish(record, "stopped", stop_reason)
                continue
            failed = not await self._act(run, run_id, index, step) or failed
        return await self._finish(record, "failed" if failed else "succeeded",
                                  STEP_FAILED_REASON if failed else None)

    async def _act(self, run: RunInput, run_id: str, index: int, step: ActionStep) -> bool:
        """One action step; False if it failed. A failure is recorded and never stops the run."""
        event = run.event
        label = f"Step {index + 1}: {step.summary or step.action}"
        if step.when is not None:
            verdict = evaluate(step.when, event.state, event.previous if event.action == "updated" else None,
                               path=f"steps[{index}].when")
            if not verdict["held"]:
                self._steps[index] = "skipped"
                await self._bookkeep("record_step", StepRecord(run_id=run_id, step_index=index, status="skipped",
                                                                conditions=verdict), f"{label} skipped")
                return True
        step_input = StepInput(run_id=run_id, step_index=index, action=step.action, params=step.params,
                               automation_id=run.automation_id, owner_id=run.owner_id, event=event)
        queue = run.external_steps.get(index)
        try:
            if queue is None:  # a record action: a local activity, in the step's database transaction
                await workflow.execute_local_activity(
                    "execute_step", step_input, result_type=StepOutcome, schedule_to_close_timeout=ACTION_DEADLINE,
                    start_to_close_timeout=timedelta(seconds=60), retry_policy=ACTION_RETRY, summary=label)
            else:  # an outside service: a regular activity on its family's rate-limited task queue
                await workflow.execute_activity(
                    "execute_external_step", step_input, task_queue=queue, result_type=StepOutcome,
                    schedule_to_close_timeout=ACTION_DEADLINE, start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=ACTION_RETRY, summary=label)
        except (ActivityError, ApplicationError, TimeoutError) as err:
            # Local activity failures may arrive wrapped in ActivityError or as the cause itself.
            cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
            error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
            message = cause.message if isinstance(cause, FailureError) else str(cause)
            self._steps[index] = "failed"
            workflow.metric_meter().create_counter(STEP_FAILURES_METRIC, "Failed action steps").add(
                1, {"action": step.action, "error_type": error_type})
            await self._bookkeep("record_step", StepRecord(run_id=run_id, step_index=index, status="failed",
                                                            error_type=error_type, error_message=message),
                                 f"{label} failed")
            return False
        self._steps[index] = "succeeded"
        return True

    async def _wait(self, run: RunInput, run_id: str, index: int, step: DelayStep) -> str | None:
        """A durable timer; afterwards the reason to stop if the automation was deactivated or deleted meanwhile."""
        self._set_status("waiting")
        await self._bookkeep("record_step", StepRecord(run_id=run_id, step_index=index, status="pending",
                                                        run_status="waiting"), f"Step {index + 1}: wait")
        await workflow.sleep(step.delay.timedelta, summary=f"Step {index + 1}: wait {step.delay.duration}")
        if workflow.patched(RESUME_IN_ONE_TRANSACTION):
            stop_reason: str | None = await workflow.execute_local_activity(
                "resume_after_delay", DelayEnded(run_id=run_id, step_index=index, automation_id=run.automation_id),
                summary="Still active?", start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=BOOKKEEPING_RETRY)
            self._steps[index] = "skipped" if stop_reason else "succeeded"
            if not stop_reason:
                self._set_status("running")
            return stop_reason
        # v0.1, for runs whose delay started before the patch: check, then record, in two local activities.
        active = await workflow.execute_local_activity(
            "automation_is_active", run.automation_id, result_type=bool, summary="Still active?",
            start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=BOOKKEEPING_RETRY)
        self._steps[index] = "succeeded" if active else "skipped"
        if active:
            self._set_status("running")
        await self._bookkeep("record_step", StepRecord(run_id=run_id, step_index=index, status=self._steps[index],
                                                        run_status="running" if active else None),
                             f"Step {index + 1}: waited")
        return None if active else f"automation deactivated during the delay of step {index + 1}"

    async def _finish(self, record: RunRecord, status: str, reason: str | None) -> RunOutcome:
        record.status, record.reason, record.finished = status, reason, True
        self._set_status(status)
        workflow.metric_meter().create_counter(RUNS_METRIC, "Finished automation runs").add(1, {"status": status})
        await self._bookkeep("record_run", record, f"Run {status}")
        return RunOutcome(status=status, reason=reason, steps=self._steps)

    def _set_status(self, status: str) -> None:
        self._status = status
        # A run started without our search attributes (a server that lacks them) is not indexed.
        if workflow.info().typed_search_attributes.get(RUN_STATUS) is not None:
            workflow.upsert_search_attributes([RUN_STATUS.value_set(status)])

    async def _bookkeep(self, activity_name: str, arg: Any, summary: str) -> None:
        await workflow.execute_local_activity(
            activity_name, arg, summary=summary,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=BOOKKEEPING_RETRY)

