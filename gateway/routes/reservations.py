"""The reservations endpoints of the contract."""


class ReservationRoutes:
    pass
