"""The guests endpoints of the contract."""


class GuestRoutes:
    pass
