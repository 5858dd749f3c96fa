"""Event intake over HTTP: S2 events (one or a batch) and Pipedrive webhooks, answered fast (senders time out at
10 s and retry): committed to durable intake, or refused with a 4xx naming the problem."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status
from pydantic import Discriminator, Field, Tag

from models.api import AcceptedEvent, EventsAccepted, WebhookReceipt
from models.events import EntityEvent
from starter.api.deps import CurrentUser, SessionDep, WebhookUser
from starter.inbox import MAX_BATCH, accept_events
from starter.intake import parse_event
from starter.pipedrive import WebhookIgnored, to_event

router = APIRouter(tags=["event intake"])


def _one_or_many(value: Any) -> str | None:
    if isinstance(value, list):
        return "events"
    return "event" if isinstance(value, dict | EntityEvent) else None


# The tags name error paths: `event.current`, or `events[3].current` in a batch.
EventsBody = Annotated[
    Annotated[EntityEvent, Tag("event")] | Annotated[list[EntityEvent], Tag("events"),
                                                     Field(min_length=1, max_length=MAX_BATCH)],
    Discriminator(_one_or_many, custom_error_type="events",
                  custom_error_message="the body is an S2 event (an object) or a list of them"),
]


@router.post("/events", status_code=status.HTTP_202_ACCEPTED)
def post_events(session: SessionDep, user: CurrentUser, body: Annotated[EventsBody, Body()]) -> EventsAccepted:
    """Take entity events of your company: one S2 event, or a list of up to 500 (accepted or refused as a whole).
    The same `event_id` sent again fires each automation once (`duplicate: true`)."""
    events = body if isinstance(body, list) else [body]
    accepted = accept_events(session, user.company_id, events)
    return EventsAccepted(accepted=[AcceptedEvent(event_id=a.event_id, duplicate=a.duplicate) for a in accepted])


@router.post("/webhooks/pipedrive", status_code=status.HTTP_202_ACCEPTED,
             responses={200: {"model": WebhookReceipt, "description": "Well-formed, but about a record type no "
                                                                      "automation triggers on: ignored"}})
def pipedrive_webhook(session: SessionDep, user: WebhookUser, response: Response,
                      payload: Annotated[dict[str, Any], Body(description="A Pipedrive webhook, v1 or v2")],
                      ) -> WebhookReceipt:
    """A Pipedrive webhook (HTTP basic auth: any user name, an API token as password), read as an S2 event of
    your company."""
    try:
        event = parse_event(to_event(payload, user.company_id))
    except WebhookIgnored as ignored:
        response.status_code = status.HTTP_200_OK
        return WebhookReceipt(status="ignored", reason=str(ignored))
    [accepted] = accept_events(session, user.company_id, [event])
    return WebhookReceipt(status="duplicate" if accepted.duplicate else "accepted", event_id=event.event_id,
                          entity=event.entity, action=event.action, entity_id=event.entity_id)
