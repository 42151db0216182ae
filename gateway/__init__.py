"""The HTTP gateway: the one door through which front-end apps, the PMS and monitoring
reach the suite. It checks who is asking, validates what they send with the same
marshmallow schemas that document the API, and turns each request into an RPC."""
