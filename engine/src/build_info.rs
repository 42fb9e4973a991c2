//! The build date stamped into the binary, in ZooKeeper's `yyyy-MM-dd HH:mm UTC` form.
//!
//! `engine/build.rs` includes this file (`#[path]`) to compute the date at build time and
//! hands it to the binary as `WARREN_BUILD_DATE`; the library compiles it too, so that the
//! date arithmetic is unit-tested. It must therefore stay free of other crate modules.
//!
//! The date comes from, in order: `SOURCE_DATE_EPOCH` (reproducible builds: Debian's
//! packaging tools set it), the last git commit's date, else [`UNKNOWN`]. Never the wall
//! clock: two builds of one commit carry the same date, and the date changes only when the
//! commit does, so the build script need not run again on every build.

/// What the binary reports when no date could be found.
pub const UNKNOWN: &str = "unknown";

/// Seconds since the epoch of 9999-12-31 23:59:59 UTC: the last instant with a 4-digit year.
const MAX_SECS: i64 = 253_402_300_799;

/// `secs` (seconds since 1970-01-01 UTC) as `yyyy-MM-dd HH:mm UTC`; None before the epoch or
/// past year 9999.
pub fn utc_minute(secs: i64) -> Option<String> {
    if !(0..=MAX_SECS).contains(&secs) {
        return None;
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    Some(format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60))
}

/// Year, month (1-12) and day (1-31) of the `days`-th day after 1970-01-01, `days` ≥ 0.
/// Counts in 400-year eras starting on March 1st, so that the leap day ends a year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 1970-01-01 is day 719,468 counted from 0000-03-01.
    let z = days + 719_468;
    let era = z / DAYS_PER_ERA;
    let day_of_era = z % DAYS_PER_ERA;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March (0) to February (11), each 30 or 31 days but February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

/// The build date from `SOURCE_DATE_EPOCH` when it holds a usable number of seconds, else
/// from the last commit's time (`git log -1 --format=%ct`), else [`UNKNOWN`].
pub fn build_date(source_date_epoch: Option<&str>, commit_secs: Option<&str>) -> String {
    [source_date_epoch, commit_secs]
        .into_iter()
        .flatten()
        .find_map(|s| s.trim().parse::<i64>().ok().and_then(utc_minute))
        .unwrap_or_else(|| UNKNOWN.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_zookeeper_does() {
        assert_eq!(utc_minute(0).as_deref(), Some("1970-01-01 00:00 UTC"));
        // ZooKeeper 3.8.0's own: "built on 2022-02-25 08:49 UTC".
        assert_eq!(utc_minute(1_645_778_940).as_deref(), Some("2022-02-25 08:49 UTC"));
        // Seconds are dropped, not rounded.
        assert_eq!(utc_minute(1_645_778_999).as_deref(), Some("2022-02-25 08:49 UTC"));
    }

    #[test]
    fn leap_days_and_year_ends() {
        assert_eq!(utc_minute(951_782_400).as_deref(), Some("2000-02-29 00:00 UTC"));
        assert_eq!(utc_minute(1_709_251_199).as_deref(), Some("2024-02-29 23:59 UTC"));
        assert_eq!(utc_minute(1_709_251_200).as_deref(), Some("2024-03-01 00:00 UTC"));
        assert_eq!(utc_minute(4_107_542_400).as_deref(), Some("2100-03-01 00:00 UTC"));
        assert_eq!(utc_minute(1_798_761_599).as_deref(), Some("2026-12-31 23:59 UTC"));
        assert_eq!(utc_minute(MAX_SECS).as_deref(), Some("9999-12-31 23:59 UTC"));
    }

    #[test]
    fn out_of_range_is_none() {
        assert_eq!(utc_minute(-1), None);
        assert_eq!(utc_minute(MAX_SECS + 1), None);
        assert_eq!(utc_minute(i64::MIN), None);
        assert_eq!(utc_minute(i64::MAX), None);
    }

    #[test]
    fn source_date_epoch_wins_then_git_then_unknown() {
        assert_eq!(build_date(Some("0"), Some("1645778940")), "1970-01-01 00:00 UTC");
        assert_eq!(build_date(None, Some("1645778940\n")), "2022-02-25 08:49 UTC");
        // A SOURCE_DATE_EPOCH that is not a usable number is passed over.
        assert_eq!(build_date(Some("yesterday"), Some("1645778940")), "2022-02-25 08:49 UTC");
        assert_eq!(build_date(Some("-5"), None), UNKNOWN);
        assert_eq!(build_date(None, None), UNKNOWN);
        assert_eq!(build_date(Some(""), Some("")), UNKNOWN);
    }
}
