"""Times as the clinic reads them: stored as naive UTC, shown in the clinic's time zone.

The database and the API keep UTC; screens, reports and the history's date filters use the zone
named by `DERMALENS_TIME_ZONE` (an IANA name such as "Europe/Berlin"; "UTC" by default).
"""

from datetime import date, datetime, time, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Seconds are shown: several analyses a minute are common, and they must be told apart.
DISPLAY_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def zone(name: str) -> tzinfo:
    """The time zone called `name` (IANA, e.g. "Europe/London"; zoneinfo caches them).

    :raise ValueError: no such zone; the message names it.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' "
                         "or 'UTC'.") from None


def local(moment: datetime, clinic_zone: tzinfo) -> datetime:
    """A stored (naive UTC) time as an aware time in `clinic_zone`."""
    return moment.replace(tzinfo=timezone.utc).astimezone(clinic_zone)


def display(moment: datetime, clinic_zone: tzinfo) -> str:
    """"2026-12-02 10:15:32 CET": a stored (naive UTC) time in the clinic's zone, with its
    abbreviation so a reader never has to guess."""
    return local(moment, clinic_zone).strftime(DISPLAY_FORMAT)


def start_of_day(day: date, clinic_zone: tzinfo) -> datetime:
    """Local midnight starting `day` in `clinic_zone`, as a naive UTC time to compare with stored
    ones."""
    return (datetime.combine(day, time.min, tzinfo=clinic_zone)
            .astimezone(timezone.utc).replace(tzinfo=None))
