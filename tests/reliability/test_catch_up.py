"""Consumers that are down, or that never ran yet, miss nothing: the kit declares every queue
of `servicekit.events.SUBSCRIPTIONS` up front, so events wait for them in the broker."""

from kombu import Connection
from nameko import config

from servicekit import bus, events
from tests.reliability.faults import Traffic, duplicated_side_effects, event_books, query
from tests.support import Api, wait_for


def waiting_in(queue: str) -> int:
    with Connection(config["AMQP_URI"]) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def publish_some(api: Api, batch: str, guests: int) -> Traffic:
    traffic = Traffic(api)
    for n in range(guests):
        key = f"g-{batch}-{n}"
        traffic.bodies[key] = traffic.guest_body(key)
        guest = traffic.call("guest", "/guests", traffic.bodies[key], key)
        assert guest.status == 201, guest.body
        traffic.bodies[f"c-{key}"] = traffic.complaint_body(guest.body["id"])
        complaint = traffic.call("complaint", "/complaints", traffic.bodies[f"c-{key}"], f"c-{key}")
        assert complaint.status == 201, complaint.body
    return traffic


def test_a_consumer_that_was_down_or_never_ran_catches_up_completely(
    patient_retries, start_services, suite_config
):
    from gateway.service import GatewayService
    from services.complaints.service import ComplaintsService
    from services.guests.service import GuestsService
    from services.notifications.service import NotificationsService
    from services.reservations.service import ReservationsService
    from services.revisits.service import RevisitsService

    # The notifications service has never run on this broker; revisits runs, for now.
    start_services(GatewayService, GuestsService, ComplaintsService, ReservationsService)
    revisits = start_services(RevisitsService)
    api = Api(f"http://127.0.0.1:{suite_config['port']}").as_role("agent", "front_office")
    publish_some(api, "first", 3)
    wait_for(lambda: query("revisits", "select count(*) from revisits")[0][0] == 3, timeout=20)

    # Before the notifications service ever started, its queues hold what was published.
    before_first_start = {
        t: waiting_in(bus.queue_name("notifications", t))
        for t in ("guest_registered", "complaint_filed")
    }
    assert before_first_start == {"guest_registered": 3, "complaint_filed": 3}

    # The revisits service goes down; more guests and complaints arrive meanwhile.
    revisits.stop()
    publish_some(api, "second", 4)
    wait_for(lambda: waiting_in(bus.queue_name("revisits", "complaint_filed")) == 4, timeout=20)
    backlog = sum(
        waiting_in(bus.queue_name(consumer, t))
        for consumer in ("revisits", "notifications")
        for t in events.SUBSCRIPTIONS[consumer]
    )

    start_services(RevisitsService, NotificationsService)
    books = event_books(timeout=60)
    duplicates = duplicated_side_effects()
    revisits_made = query("revisits", "select count(distinct complaint_id) from revisits")[0][0]
    print(
        f"\ncatch-up: {backlog} events waited for two consumers (one down, one never started); "
        f"events sent {books['sent']}, received {books['received']}, lost {books['lost']}; "
        f"complaint revisits {revisits_made} of 7; duplicates {duplicates}"
    )
    assert books["lost"] == 0
    assert revisits_made == 7
    assert not any(duplicates.values()), duplicates
