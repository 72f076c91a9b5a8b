"""Times: stored in UTC, shown and filtered in the clinic's time zone."""

from datetime import date, datetime

import pytest

from dermalens import clock


@pytest.mark.parametrize("name, stored, shown", [
    ("UTC", datetime(2026, 3, 29, 0, 59, 59), "2026-03-29 00:59:59 UTC"),
    ("Europe/London", datetime(2026, 3, 29, 0, 59, 59), "2026-03-29 00:59:59 GMT"),
    ("Europe/London", datetime(2026, 3, 29, 1, 0, 0), "2026-03-29 02:00:00 BST"),  # clocks go forward
    ("Australia/Sydney", datetime(2026, 12, 31, 14, 0, 1), "2027-01-01 01:00:01 AEDT"),
])
def test_a_stored_time_is_shown_in_the_clinics_zone_with_seconds(name, stored, shown):
    assert clock.display(stored, clock.zone(name)) == shown


def test_a_clinics_day_starts_at_its_own_midnight():
    assert clock.start_of_day(date(2026, 7, 1), clock.zone("Europe/Berlin")) == datetime(2026, 6, 30, 22, 0)
    assert clock.start_of_day(date(2026, 7, 1), clock.zone("America/New_York")) == datetime(2026, 7, 1, 4, 0)


@pytest.mark.parametrize("name", ["Europe/Atlantis", "/etc/passwd", "UTC+5"])
def test_an_unknown_zone_is_refused_by_name(name):
    with pytest.raises(ValueError, match="Unknown time zone"):
        clock.zone(name)
