def test_the_suite_starts_and_answers_health(suite):
    answer = suite.get("/health")
    assert answer.status_code == 200, answer.text
    assert answer.json()["services"] == {
        "guests": "ok",
        "reservations": "ok",
        "complaints": "ok",
        "revisits": "ok",
        "notifications": "ok",
        "gateway": "ok",
    }
