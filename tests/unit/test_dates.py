"""Document dates for date-range filters: ISO 8601 in, UTC epoch seconds out."""

from services.retrieve.backends.base import parse_date


def test_document_dates_parse_to_utc_epoch_seconds():
    assert parse_date("1970-01-02") == 86400
    assert parse_date("1970-01-02", end_of_day=True) == 2 * 86400 - 1
    assert parse_date("1970-01-01T01:00:00+01:00") == 0 == parse_date("1970-01-01T00:00:00Z")
    assert parse_date("1970-01-01T00:00:10") == 10  # no offset: UTC
    assert parse_date("yesterday") is None and parse_date("") is None and parse_date("2024-13-01") is None
