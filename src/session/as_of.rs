//! `--as-of RUN`: which run a user means, and the stages as that run left them committed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::store::history::AsOf;
use crate::store::{StageManifest, Store, TableBuild};
use crate::{Error, Result};

/// The run `spec` names: a run id, a unique prefix of one, `last`, `last~N` (the run N before
/// the last), or a time (RFC 3339, `2026-12-01T09:30`, or a date, meaning its midnight UTC):
/// the last run that had ended by then.
pub async fn resolve(store: &Store, spec: &str) -> Result<AsOf> {
    let spec = spec.trim();
    let ids = store.run_ids().await?;
    if let Some(back) = last_n(spec) {
        return ids
            .get(back)
            .map(|id| AsOf { run_id: id.clone() })
            .ok_or_else(|| {
                Error::usage(
                    format!(
                        "`{spec}`: this instance has {} recorded",
                        crate::report::plural(ids.len() as u64, "run")
                    ),
                    "`weir runs` lists them",
                )
            });
    }
    let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(spec)).collect();
    match matching.as_slice() {
        [one] if !spec.is_empty() => {
            return Ok(AsOf {
                run_id: (*one).clone(),
            });
        }
        [] => {}
        many if !spec.is_empty() => {
            let shown: Vec<&str> = many.iter().take(5).map(|s| s.as_str()).collect();
            return Err(Error::usage(
                format!("`{spec}` is the start of {} run ids", many.len()),
                format!(
                    "give more of the id: {}{}",
                    shown.join(", "),
                    if many.len() > 5 { ", ..." } else { "" }
                ),
            ));
        }
        _ => {}
    }
    let Some(time) = parse_time(spec) else {
        let latest: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
        return Err(Error::usage(
            format!("`{spec}` is not a run of this instance"),
            format!(
                "give a run id (or the start of one), last, last~N, or a time such as 2026-12-01T09:30:00Z; the latest runs: {}",
                if latest.is_empty() {
                    "none".to_string()
                } else {
                    latest.join(", ")
                }
            ),
        ));
    };
    for id in &ids {
        let Some(record) = store.read_run(id).await? else {
            continue;
        };
        // To the millisecond, as `weir.runs` shows it: its `ended_at` names that run.
        let ended = DateTime::parse_from_rfc3339(&record.ended_at)
            .map(|t| t.timestamp_millis())
            .ok();
        if ended.is_some_and(|t| t <= time.timestamp_millis()) {
            return Ok(AsOf { run_id: id.clone() });
        }
    }
    Err(Error::usage(
        format!("no run of this instance had ended by {}", time.to_rfc3339()),
        "`weir runs` lists them",
    ))
}

/// `last` is 0 runs back, `last~2` two.
fn last_n(spec: &str) -> Option<usize> {
    match spec.strip_prefix("last")? {
        "" => Some(0),
        rest => rest.strip_prefix('~')?.parse().ok(),
    }
}

fn parse_time(spec: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(spec) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(spec, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(spec, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The stages as committed at the end of `as_of`, every build of which must still be stored.
pub async fn manifests(store: &Store, as_of: &AsOf) -> Result<BTreeMap<String, StageManifest>> {
    let manifests = store.manifests_as_of(as_of).await?;
    let builds: Vec<&TableBuild> = manifests.values().flat_map(|m| m.tables.values()).collect();
    let intact = store.intact(&builds).await?;
    let gone: Vec<String> = builds
        .iter()
        .zip(intact)
        .filter(|(_, ok)| !ok)
        .map(|(b, _)| format!("{}.{} (built by run {})", b.stage, b.table, b.run_id))
        .collect();
    if gone.is_empty() {
        return Ok(manifests);
    }
    Err(Error::usage(
        format!(
            "as of run {}, {} no longer stored: {}",
            as_of.run_id,
            if gone.len() == 1 {
                "a committed table is"
            } else {
                "committed tables are"
            },
            gone.join(", ")
        ),
        "`weir cache gc` deletes what is no longer committed once the last runs (`--keep-runs`, default 10) have moved past it; read a later run, or the tables as committed now",
    ))
}

#[cfg(test)]
mod tests {
    use super::{last_n, parse_time};

    #[test]
    fn last_counts_back_from_the_newest_run() {
        assert_eq!(last_n("last"), Some(0));
        assert_eq!(last_n("last~3"), Some(3));
        assert_eq!(last_n("last3"), None);
        assert_eq!(last_n("lastly"), None);
    }

    #[test]
    fn times_are_utc_and_a_date_is_its_midnight() {
        let t = |s: &str| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(t("2026-12-01"), Some("2026-12-01T00:00:00+00:00".into()));
        assert_eq!(
            t("2026-12-01T09:30"),
            Some("2026-12-01T09:30:00+00:00".into())
        );
        assert_eq!(
            t("2026-12-01T09:30:00+01:00"),
            Some("2026-12-01T08:30:00+00:00".into())
        );
        assert_eq!(t("20261201T0930"), None);
    }
}
