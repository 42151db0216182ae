"""The revisits endpoints of the contract."""


class RevisitRoutes:
    pass
