//! Shared clinical semantics (clinical-rules.md §5): when a Condition is
//! active, when an Observation counts, and the date a resource speaks for.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::fhir::model::{Condition, Encounter, Observation, Procedure};

/// Not refuted and not entered in error.
pub fn condition_is_credible(condition: &Condition) -> bool {
    !condition
        .verification_status
        .as_ref()
        .is_some_and(|v| v.has_code(&["refuted", "entered-in-error"]))
}

/// An abatement is on record and (where it has a date) not in the future.
pub fn has_abated(condition: &Condition, now: DateTime<Utc>) -> bool {
    let dated = condition.abatement_date_time.or_else(|| {
        condition
            .abatement_period
            .as_ref()
            .and_then(|p| p.end.or(p.start))
    });
    match dated {
        Some(at) => at <= now,
        None => condition.abated_undated,
    }
}

/// When the condition abated, where the record dates it.
pub fn abatement_date(condition: &Condition) -> Option<DateTime<Utc>> {
    condition.abatement_date_time.or_else(|| {
        condition
            .abatement_period
            .as_ref()
            .and_then(|p| p.end.or(p.start))
    })
}

/// §5: clinicalStatus active, recurrence or relapse (or absent with no
/// abatement); credible; abatement not in the past.
pub fn condition_is_active(condition: &Condition, now: DateTime<Utc>) -> bool {
    if !condition_is_credible(condition) || has_abated(condition, now) {
        return false;
    }
    match &condition.clinical_status {
        Some(status) => status.has_code(&["active", "recurrence", "relapse"]),
        None => true,
    }
}

/// Resolved: clinicalStatus resolved, or abated. (Inactive is not resolved:
/// §1 counts an inactive cramp recorded within 12 months.)
pub fn condition_is_resolved(condition: &Condition, now: DateTime<Utc>) -> bool {
    has_abated(condition, now)
        || condition
            .clinical_status
            .as_ref()
            .is_some_and(|s| s.has_code(&["resolved"]))
}

/// When the condition was documented: the later of onset and recordedDate.
pub fn condition_date(condition: &Condition) -> Option<DateTime<Utc>> {
    let onset = condition
        .onset_date_time
        .or_else(|| condition.onset_period.as_ref().and_then(|p| p.start));
    onset.max(condition.recorded_date)
}

/// The latest instant the condition's dates allow: for a partial date
/// ("2026-03") the end of the interval. r2 §5: a finding counts when any
/// part of the interval falls in its window.
pub fn condition_date_latest(condition: &Condition) -> Option<DateTime<Utc>> {
    let onset = condition
        .onset_latest
        .or(condition.onset_date_time)
        .or_else(|| condition.onset_period.as_ref().and_then(|p| p.start));
    onset.max(condition.recorded_latest.or(condition.recorded_date))
}

/// Final, amended, corrected or preliminary.
pub fn observation_counts(observation: &Observation) -> bool {
    matches!(
        observation.status.as_deref(),
        Some("final" | "amended" | "corrected" | "preliminary")
    )
}

/// effective[x], else issued.
pub fn observation_date(observation: &Observation) -> Option<DateTime<Utc>> {
    observation
        .effective_date_time
        .or(observation.effective_instant)
        .or_else(|| {
            observation
                .effective_period
                .as_ref()
                .and_then(|p| p.end.or(p.start))
        })
        .or(observation.issued)
}

/// A procedure that happened (not planned, not entered in error).
pub fn procedure_happened(procedure: &Procedure) -> bool {
    !matches!(
        procedure.status.as_deref(),
        Some("entered-in-error" | "not-done" | "preparation")
    )
}

pub fn procedure_date(procedure: &Procedure) -> Option<DateTime<Utc>> {
    procedure.performed_date_time.or_else(|| {
        procedure
            .performed_period
            .as_ref()
            .and_then(|p| p.end.or(p.start))
    })
}

/// An inpatient stay of at least `days` that ended (or, still running,
/// started) inside the window.
pub fn inpatient_stay(
    encounter: &Encounter,
    days: i64,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let inpatient = encounter
        .class
        .iter()
        .any(|c| matches!(c.code.as_deref(), Some("IMP" | "ACUTE" | "NONAC")));
    let Some(period) = &encounter.period else {
        return false;
    };
    let Some(start) = period.start else {
        return false;
    };
    let end = period.end.unwrap_or(now).min(now);
    inpatient
        && !matches!(
            encounter.status.as_deref(),
            Some("cancelled" | "entered-in-error" | "planned")
        )
        && end - start >= Duration::days(days)
        && end >= since
}

/// Is `at` within the `days` before `now` (a day's grace for clocks ahead)?
pub fn within(at: Option<DateTime<Utc>>, days: i64, now: DateTime<Utc>) -> bool {
    at.is_some_and(|at| at >= now - Duration::days(days) && at <= now + Duration::days(1))
}

/// A date for card text: "2026-05-02".
pub fn day(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day())
}
