"""The notifications endpoints of the contract."""


class NotificationRoutes:
    pass
