from tests.helpers import create_automation, emit_and_wait, event, running_worker, steps_of


async def test_scratch(time_skipping_env, company_factory):
    c = company_factory(open_deal_limit=0)
    aid = create_automation(c.admin_id, {"name": "x", "trigger": {"entity": "deal", "action": "updated"},
        "steps": [{"action": "deal.create", "params": {"title": "a"}}, {"action": "activity.create", "params": {"subject": "s"}}]})
    async with running_worker(time_skipping_env.client):
        outcomes = await emit_and_wait(time_skipping_env.client, event(c.id, current={"title": "t"}))
    print(outcomes)
    print(steps_of(f"automation-{aid}-event-x"))
