"""The providers that carry a notification: SMTP for email, an HTTP provider for SMS and
fax, the log when nothing else is configured.

Settings (environment):
    SMTP_HOST, SMTP_PORT (587), SMTP_TLS (STARTTLS when "1"/"true"), SMTP_USERNAME,
    SMTP_PASSWORD, SMTP_FROM (the sender's address)
    SMS_WEBHOOK_URL, FAX_WEBHOOK_URL: a JSON POST per message
    NOTIFY_SEND_TIMEOUT: seconds a provider may take (default 10)

A provider that refuses or fails raises `DeliveryFailed`; the courier retries later.
"""

import logging
import smtplib
from email.message import EmailMessage

import requests

from servicekit import settings
from services.notifications.domain import Channels

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A provider did not take the message; `reason` carries no personal data."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _flag(name: str) -> bool:
    return settings.env(name, "").lower() in ("1", "true", "yes", "on")


def configured() -> Channels:
    return Channels(
        email=bool(settings.env("SMTP_HOST", "")),
        sms=bool(settings.env("SMS_WEBHOOK_URL", "")),
        fax=bool(settings.env("FAX_WEBHOOK_URL", "")),
    )


def send_timeout() -> float:
    return settings.float_setting("NOTIFY_SEND_TIMEOUT", 10.0, minimum=0.1)


def send_email(to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings.env("SMTP_FROM", "hotel@localhost")
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    host = settings.env("SMTP_HOST", "localhost")
    port = settings.int_setting("SMTP_PORT", 587, minimum=1)
    try:
        with smtplib.SMTP(host, port, timeout=send_timeout()) as smtp:
            if _flag("SMTP_TLS"):
                smtp.starttls()
            username = settings.env("SMTP_USERNAME", "")
            if username:
                smtp.login(username, settings.env("SMTP_PASSWORD", ""))
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP: {exc.__class__.__name__}") from None


def post_to_provider(url: str, payload: dict) -> None:
    try:
        answer = requests.post(url, json=payload, timeout=send_timeout())
    except requests.RequestException as exc:
        raise DeliveryFailed(f"provider unreachable: {exc.__class__.__name__}") from None
    if answer.status_code >= 300:
        raise DeliveryFailed(f"provider answered {answer.status_code}")


def deliver(notification) -> None:
    """Send one notification on its channel; raises `DeliveryFailed` if it did not go."""
    channel = notification.channel
    if channel == "email":
        send_email(notification.to, notification.subject, notification.body)
    elif channel in ("sms", "fax"):
        url = settings.env(f"{channel.upper()}_WEBHOOK_URL", "")
        if not url:
            raise DeliveryFailed(f"{channel} provider not configured")
        post_to_provider(
            url,
            {
                "id": notification.id,
                "kind": notification.kind,
                "to": notification.to,
                "subject": notification.subject,
                "text": notification.body if channel == "fax" else _sms_text(notification),
            },
        )
    elif channel == "log":
        # the text stays in GET /notifications; the log says only that it was issued
        log.info(
            "notification issued to the log",
            extra={"notification_id": notification.id, "kind": notification.kind},
        )
    else:
        raise DeliveryFailed(f"channel {channel} is not sent by the courier")


def _sms_text(notification) -> str:
    return f"{notification.subject}\n{notification.body}"
