"""Realistic data in bulk: `COPY` straight into each service's own database, projections
included, as the suite would hold them after a few years of guests and a year of business.

For `guests` guests (default 1,000,000):

- guests: the files (at most 900 a day, so the file numbers stay within the day's 999),
  the daily serials, and the caller screen's projection (one history line per reservation,
  stay, complaint and revisit; each complaint's entry in the open-complaints table);
- reservations: the room types, a year of past reservations (a quarter as many as guests,
  checked out, cancelled or released), its own list of guests;
- complaints: a year of complaints (a twentieth as many as guests, resolved or escalated),
  each with its processing form;
- revisits: its list of guests, a post-stay revisit per stay and one per complaint;
- notifications: its list of guests, a read-back per reservation and a receipt per
  complaint, all sent.

Nothing seeded is due for a timer (no hold to release, no complaint to escalate), so the
measured load is the only load. Guest `i` has the phone `+34` followed by `600000000 + i`:
the load scripts pick known callers from that rule. Secondary indexes are dropped during a
table's `COPY` and built again after it, as one does for a bulk load.
"""

import io
import json
import random
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import psycopg2

from bench.config import BenchConfig
from servicekit import settings
from services.complaints import tracking_codes
from services.complaints.domain import CHANNELS as COMPLAINT_CHANNELS
from services.complaints.domain import SYSTEM, role_owner
from services.guests.domain import file_number, name_key
from services.reservations.domain import CODE_ALPHABET, CODE_LENGTH

GUESTS_PER_DAY = 900
# names to combine, as a hotel on the Spanish coast sees them
FIRST_NAMES = str.split(
    "Lucía María Carmen Ana Laura Marta Elena Sofía Paula Julia Sara Alba Irene Nuria Emma "
    "Antonio José Manuel Francisco David Javier Daniel Carlos Miguel Pablo Jorge Luis Sergio "
    "Peter John Anna James Oliver Charlotte Thomas Emily George Hannah"
)
LAST_NAMES = str.split(
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez "
    "Vázquez Ramos Gil Ramírez Serrano Blanco Molina Smith Jones Brown Taylor Wilson Müller"
)
# The bench's room types: large enough that no booking of the bench finds them full.
ROOM_TYPES = (
    ("presidential", "Presidential suite", "950.00", 400),
    ("junior_suite", "Junior suite", "260.00", 600),
    ("superior", "Superior double", "180.00", 800),
    ("family", "Family room", "165.00", 800),
    ("twin", "Twin room", "120.00", 800),
    ("economy", "Economy single", "70.00", 600),
)
PAYMENT_METHODS = ("credit_card", "debit_card", "cash")


def phone_of(guest_id: int) -> str:
    return f"+34{600000000 + guest_id}"


def reservation_code(index: int) -> str:
    digits = []
    for _ in range(CODE_LENGTH):
        index, digit = divmod(index, len(CODE_ALPHABET))
        digits.append(CODE_ALPHABET[digit])
    return "".join(reversed(digits))


@dataclass(frozen=True, slots=True)
class GuestRow:
    id: int
    name: str
    phone: str
    email: str | None
    birthday: date
    category: str
    language: str
    arrival_date: date
    serial: int


def guest_rows(count: int, today: date) -> Iterator[GuestRow]:
    rng = random.Random(1)
    days = -(-count // GUESTS_PER_DAY)
    for guest_id in range(1, count + 1):
        day_index, serial = divmod(guest_id - 1, GUESTS_PER_DAY)
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        yield GuestRow(
            id=guest_id,
            name=name,
            phone=phone_of(guest_id),
            email=f"guest{guest_id}@example.com" if guest_id % 2 else None,
            birthday=date(1950 + rng.randrange(55), rng.randrange(1, 13), rng.randrange(1, 29)),
            category="vip" if rng.random() < 0.03 else "individual",
            language="es" if rng.random() < 0.6 else "en",
            # the oldest files first; yesterday's are the newest, today is left for the suite
            arrival_date=today - timedelta(days=days - day_index),
            serial=serial + 1,
        )


@dataclass(frozen=True)
class ReservationRow:
    id: int
    code: str
    status: str
    guest: int
    room_type_id: int
    room_type: tuple
    arrival: date
    nights: int
    payment_method: str
    created_at: datetime
    checked_out_at: datetime | None


@dataclass(frozen=True)
class ComplaintRow:
    id: int
    tracking_code: str
    guest: int
    channel: str
    category: str
    department: str
    resolved: bool
    received_at: datetime


class Dataset:
    """Everything seeded, generated once and the same for every database it lands in."""

    def __init__(self, guests: int, today: date):
        self.today = today
        self.guest_count = guests
        self.room_types = ROOM_TYPES
        # generated once: four databases hold the guests
        self.guest_rows = list(guest_rows(guests, today))
        rng = random.Random(2)
        self.reservations = [self._reservation(i, rng) for i in range(1, guests // 4 + 1)]
        self.complaints = [self._complaint(i, rng) for i in range(1, guests // 20 + 1)]

    def guests(self) -> Iterator[GuestRow]:
        return iter(self.guest_rows)

    def _reservation(self, index: int, rng: random.Random) -> ReservationRow:
        nights = rng.randint(1, 5)
        arrival = self.today - timedelta(days=nights + rng.randrange(365))
        roll = rng.random()
        status = "checked_out" if roll < 0.85 else "cancelled" if roll < 0.95 else "released"
        type_id = rng.randrange(len(ROOM_TYPES))
        booked_days_before = rng.randint(1, 60)
        return ReservationRow(
            id=index,
            code=reservation_code(index),
            status=status,
            guest=rng.randint(1, self.guest_count),
            room_type_id=type_id + 1,
            room_type=ROOM_TYPES[type_id],
            arrival=arrival,
            nights=nights,
            payment_method=rng.choice(PAYMENT_METHODS),
            created_at=_at(arrival - timedelta(days=booked_days_before), time(11)),
            checked_out_at=_at(arrival + timedelta(days=nights), time(11))
            if status == "checked_out"
            else None,
        )

    def _complaint(self, index: int, rng: random.Random) -> ComplaintRow:
        category = rng.choice(tuple(settings.DEFAULT_COMPLAINT_CATEGORIES))
        received = datetime.combine(
            self.today - timedelta(days=1 + rng.randrange(365)), time(8), UTC
        ) + timedelta(minutes=rng.randrange(14 * 60))
        return ComplaintRow(
            id=index,
            tracking_code=tracking_codes.new_code(),
            guest=rng.randint(1, self.guest_count),
            channel=rng.choice(COMPLAINT_CHANNELS[:-1]),
            category=category,
            department=settings.DEFAULT_COMPLAINT_CATEGORIES[category],
            resolved=rng.random() < 0.92,
            received_at=received,
        )


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, UTC)


def _end_of_day(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(23, 59, 59), UTC)


# --- COPY -----------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "")
        )
    return text


class _Lines(io.RawIOBase):
    """A file that `copy_expert` reads, filled from rows as it reads."""

    def __init__(self, rows: Iterable[tuple]):
        self.rows = iter(rows)
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunks, length = [self.buffer], len(self.buffer)
        for row in self.rows:
            line = ("\t".join(map(_cell, row)) + "\n").encode()
            chunks.append(line)
            length += len(line)
            if length >= size > 0:
                break
        data = b"".join(chunks)
        if size > 0:
            self.buffer, data = data[size:], data[:size]
        else:
            self.buffer = b""
        return data


class Loader:
    """COPY into one database, its secondary indexes rebuilt after each table."""

    def __init__(self, url: str):
        self.conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
        with self.conn.cursor() as cur:
            cur.execute("set synchronous_commit = off; set maintenance_work_mem = '256MB'")
        self.loaded: list[str] = []

    def copy(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "select indexname, indexdef from pg_indexes i where schemaname = 'public' "
                "and tablename = %s and not exists "
                "(select 1 from pg_constraint c where c.conname = i.indexname)",
                (table,),
            )
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'drop index "{name}"')
            names = ", ".join(f'"{c}"' for c in columns)
            cur.copy_expert(
                f'copy "{table}" ({names}) from stdin',
                _Lines(rows),
                size=1 << 16,
            )
            for _, definition in indexes:
                cur.execute(definition)
            cur.execute(
                "select pg_get_serial_sequence(%s, 'id') from information_schema.columns "
                "where table_name = %s and column_name = 'id'",
                (f'"{table}"', table),
            )
            sequence = cur.fetchone()
            if sequence and sequence[0]:
                cur.execute(
                    f'select setval(%s, coalesce((select max(id) from "{table}"), 0) + 1, false)',
                    (sequence[0],),
                )
        self.conn.commit()
        self.loaded.append(table)

    def close(self) -> None:
        """Analyze what was loaded (the planner must know the sizes), then disconnect."""
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            for table in self.loaded:
                cur.execute(f'vacuum (analyze) "{table}"')
        self.conn.close()


# --- what each database holds ---------------------------------------------------------


def seed_guests(loader: Loader, data: Dataset) -> None:
    keys: dict[str, str] = {}

    def guests():
        for g in data.guests():
            key = keys.get(g.name) or keys.setdefault(g.name, name_key(g.name))
            registered = _at(g.arrival_date, time(10))
            yield (
                g.id,
                file_number(g.arrival_date, g.serial),
                g.name,
                key,
                g.phone,
                g.email,
                g.birthday,
                g.category,
                g.language,
                g.arrival_date,
                registered,
                registered,
            )

    loader.copy(
        "guests",
        (
            "id",
            "file_number",
            "name",
            "name_key",
            "phone",
            "email",
            "birthday",
            "category",
            "language",
            "arrival_date",
            "created_at",
            "updated_at",
        ),
        guests(),
    )
    serials: dict[date, int] = {}
    for g in data.guests():
        serials[g.arrival_date] = g.serial
    loader.copy("daily_serials", ("day", "last"), serials.items())
    loader.copy(
        "caller_history",
        ("guest_id", "at", "kind", "event", "summary", "ref"),
        _history(data),
    )
    loader.copy(
        "caller_complaints",
        (
            "complaint_id",
            "guest_id",
            "tracking_code",
            "status",
            "status_at",
            "department",
            "summary",
            "received_at",
            "due_at",
            "resolved_at",
        ),
        (
            (
                c.id,
                c.guest,
                c.tracking_code,
                "resolved" if c.resolved else "escalated",
                c.received_at + timedelta(hours=3),
                c.department,
                f"{c.category}: reported by the guest",
                c.received_at,
                _end_of_day(c.received_at),
                c.received_at + timedelta(hours=3) if c.resolved else None,
            )
            for c in data.complaints
        ),
    )


def _history(data: Dataset) -> Iterator[tuple]:
    for r in data.reservations:
        ref = f"reservations/{r.id}"
        yield (
            r.guest,
            r.created_at,
            "reservation",
            "reservation_held",
            f"Reservation {r.code} held: 1 x {r.room_type[1]}, {r.nights} night(s) "
            f"from {r.arrival}",
            ref,
        )
        if r.checked_out_at:
            yield (
                r.guest,
                r.checked_out_at,
                "stay",
                "guest_checked_out",
                f"Checked out (reservation {r.code})",
                ref,
            )
            yield (
                r.guest,
                r.checked_out_at,
                "revisit",
                "revisit_scheduled",
                f"Post-stay revisit due {r.checked_out_at.date() + timedelta(days=1)}",
                f"revisits/{r.id}",
            )
    for c in data.complaints:
        ref = f"complaints/{c.id}"
        yield (
            c.guest,
            c.received_at,
            "complaint",
            "complaint_filed",
            f"Complaint {c.tracking_code} received by {c.channel} ({c.category})",
            ref,
        )
        if c.resolved:
            yield (
                c.guest,
                c.received_at + timedelta(hours=3),
                "complaint",
                "complaint_resolved",
                f"Complaint {c.tracking_code} resolved: taken care of",
                ref,
            )


def seed_reservations(loader: Loader, data: Dataset) -> None:
    loader.copy(
        "room_types",
        ("id", "code", "name", "price", "currency", "rooms"),
        (
            (1000 + i, code, name, price, "EUR", rooms)
            for i, (code, name, price, rooms) in enumerate(data.room_types, 1)
        ),
    )
    loader.copy(
        "guests",
        ("guest_id", "name", "language", "phone", "email", "as_of"),
        (
            (g.id, g.name, g.language, g.phone, g.email, _at(g.arrival_date, time(10)))
            for g in data.guests()
        ),
    )
    bookers = {r.guest for r in data.reservations}
    names = {g.id: (g.name, g.language) for g in data.guests() if g.id in bookers}

    def reservations():
        for r in data.reservations:
            name, language = names[r.guest]
            price = Decimal(r.room_type[2])
            ended = r.checked_out_at or _at(r.arrival, time(18))
            yield (
                r.id,
                r.code,
                r.status,
                r.guest,
                name,
                language,
                1000 + r.room_type_id,
                r.arrival,
                r.nights,
                1,
                price,
                price * r.nights,
                "EUR",
                r.payment_method,
                phone_of(r.guest),
                "phone",
                _at(r.arrival, time(18)),
                f"Reservation {r.code} for {name}: 1 {r.room_type[1]}, {r.nights} night(s) "
                f"from {r.arrival}, {price * r.nights} EUR, paid by {r.payment_method}; "
                f"held until {r.arrival} 18:00.",
                _at(r.arrival, time(15)) if r.checked_out_at else None,
                r.checked_out_at,
                Decimal("35.50") if r.checked_out_at else None,
                ended,
                r.created_at,
                ended,
            )

    loader.copy(
        "reservations",
        (
            "id",
            "code",
            "status",
            "guest_id",
            "guest_name",
            "language",
            "room_type_id",
            "arrival",
            "nights",
            "rooms",
            "price",
            "total_price",
            "currency",
            "payment_method",
            "contact_phone",
            "channel",
            "hold_until",
            "readback",
            "checked_in_at",
            "checked_out_at",
            "charges",
            "ended_at",
            "created_at",
            "updated_at",
        ),
        reservations(),
    )


def seed_complaints(loader: Loader, data: Dataset) -> None:
    def complaints():
        for c in data.complaints:
            owner = role_owner("director" if not c.resolved else "manager", c.department)
            closed = c.received_at + timedelta(hours=3)
            yield (
                c.id,
                c.tracking_code,
                c.guest,
                c.channel,
                c.category,
                f"{c.category}: reported by the guest, who asks for it to be looked at",
                c.department,
                "resolved" if c.resolved else "escalated",
                owner,
                SYSTEM,
                c.received_at,
                _end_of_day(c.received_at),
                None if c.resolved else _end_of_day(c.received_at),
                closed if c.resolved else None,
                "taken care of" if c.resolved else None,
                c.received_at,
                closed,
            )

    loader.copy(
        "complaints",
        (
            "id",
            "tracking_code",
            "guest_id",
            "channel",
            "category",
            "description",
            "department",
            "status",
            "owner",
            "taken_by",
            "received_at",
            "due_at",
            "escalated_at",
            "resolved_at",
            "result",
            "created_at",
            "updated_at",
        ),
        complaints(),
    )

    def lines():
        for c in data.complaints:
            owner = role_owner("manager", c.department)
            yield (c.id, c.received_at, "receive", SYSTEM, owner, c.category, None, "open")
            if c.resolved:
                closed = c.received_at + timedelta(hours=3)
                yield (c.id, closed, "resolve", SYSTEM, owner, None, "taken care of", "resolved")
            else:
                director = role_owner("director", c.department)
                late = _end_of_day(c.received_at)
                yield (c.id, late, "escalate", SYSTEM, director, "not resolved", None, "escalated")

    loader.copy(
        "form_lines",
        ("complaint_id", "at", "action", "by", "recipient", "reason", "result", "status"),
        lines(),
    )


def seed_revisits(loader: Loader, data: Dataset) -> None:
    loader.copy(
        "guests",
        ("id", "name", "category", "phone", "language", "as_of"),
        (
            (g.id, g.name, g.category, g.phone, g.language, _at(g.arrival_date, time(10)))
            for g in data.guests()
        ),
    )

    def revisits():
        for r in data.reservations:
            if r.checked_out_at:
                due = r.checked_out_at.date() + timedelta(days=1)
                done = _at(due, time(12))
                yield (r.id, "post_stay", r.guest, r.id, None, due, due, "done", 1, True, 4, done)
        offset = len(data.reservations)
        for c in data.complaints:
            due = c.received_at.date() + timedelta(days=3)
            done = _at(due - timedelta(days=1), time(12))
            yield (
                *(offset + c.id, "complaint", c.guest, None, c.id, due, due),
                *("done", 1, True, 3, done),
            )

    loader.copy(
        "revisits",
        (
            "id",
            "kind",
            "guest_id",
            "reservation_id",
            "complaint_id",
            "due_date",
            "planned_date",
            "status",
            "attempts",
            "reached",
            "satisfaction",
            "completed_at",
        ),
        revisits(),
    )


def seed_notifications(loader: Loader, data: Dataset) -> None:
    loader.copy(
        "guests",
        ("guest_id", "name", "phone", "email", "birthday", "language", "as_of"),
        (
            (g.id, g.name, g.phone, g.email, g.birthday, g.language, _at(g.arrival_date, time(10)))
            for g in data.guests()
        ),
    )

    def notifications():
        for r in data.reservations:
            yield _notice(
                f"bench:reservation:{r.id}",
                "reservation_held",
                r.guest,
                f"Your reservation {r.code}",
                f"reservation:{r.id}",
                r.created_at,
            )
        for c in data.complaints:
            yield _notice(
                f"bench:complaint:{c.id}",
                "complaint_received",
                c.guest,
                f"We have received your complaint {c.tracking_code}",
                f"complaint:{c.id}",
                c.received_at,
            )

    loader.copy(
        "notifications",
        (
            "dedupe_key",
            "kind",
            "channel",
            "to",
            "language",
            "guest_id",
            "subject",
            "body",
            "ref",
            "status",
            "attempts",
            "created_at",
            "sent_at",
        ),
        notifications(),
    )


def _notice(key, kind, guest_id, subject, ref, at) -> tuple:
    body = f"{subject}.\n\nThank you for choosing us. Kind regards,\nCustomer service"
    return (
        key,
        kind,
        "sms",
        phone_of(guest_id),
        "en",
        guest_id,
        subject,
        body,
        ref,
        "sent",
        1,
        at,
        at,
    )


SEEDERS: dict[str, Callable[[Loader, Dataset], None]] = {
    "guests": seed_guests,
    "reservations": seed_reservations,
    "complaints": seed_complaints,
    "revisits": seed_revisits,
    "notifications": seed_notifications,
}


def seeded_guests(cfg: BenchConfig) -> int:
    """How many guests the bench's guests database already holds (0 if none)."""
    conn = psycopg2.connect(cfg.database_url("guests").replace("postgresql+psycopg2", "postgresql"))
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from guests")
            return cur.fetchone()[0]
    finally:
        conn.close()


def seed(cfg: BenchConfig, today: date | None = None) -> dict:
    """Load the whole data set; what was loaded, by table."""
    data = Dataset(cfg.guests, today or datetime.now(settings.hotel_tz()).date())

    def load(owner: str) -> None:
        loader = Loader(cfg.database_url(owner))
        SEEDERS[owner](loader, data)
        loader.close()

    # while one database builds its indexes, the next one's rows are being generated
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(load, SEEDERS))
    return {
        "guests": cfg.guests,
        "room_types": len(data.room_types),
        "reservations": len(data.reservations),
        "complaints": len(data.complaints),
    }
