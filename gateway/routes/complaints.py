"""The complaints endpoints of the contract."""


class ComplaintRoutes:
    pass
