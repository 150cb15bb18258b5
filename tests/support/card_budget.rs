//! The length budget of a card (issue 19), shared by the clinical tests
//! (example patients, samples) and the scenario tests (every scenario).

use cramp_cds::protocol::response::Card;

/// The budget of issue 19: a summary under 140 characters; a detail of a
/// card with up to 3 findings in at most 8 lines and about 700 characters.
pub const SUMMARY_CHARS: usize = 140;
pub const DETAIL_CHARS: usize = 700;
pub const DETAIL_LINES: usize = 8;
pub const FINDINGS_IN_FULL: usize = 3;

/// Every way a card breaks the budget.
pub fn over_budget(card: &Card) -> Vec<String> {
    let mut problems = Vec::new();
    let summary = card.summary.chars().count();
    if summary >= SUMMARY_CHARS {
        problems.push(format!("summary of {summary} characters"));
    }
    let findings = card.extension.cramp_cds.findings.len();
    let chars = card.detail.chars().count();
    let lines = card.detail.lines().count();
    let within = chars <= DETAIL_CHARS && lines <= DETAIL_LINES;
    if findings <= FINDINGS_IN_FULL {
        if !within {
            problems.push(format!(
                "{findings} findings in {lines} lines, {chars} characters"
            ));
        }
    } else {
        // A longer list shows the first findings and ends with "and N
        // more" (the extension keeps them all); only the DVT card lists
        // each of its findings, as every Wells item changes the points.
        let and_more =
            (1..findings).any(|more| card.detail.contains(&format!("- and {more} more: ")));
        let all_shown = card.source.topic.code == "dvt-rule-out";
        if !(and_more || all_shown) || lines > DETAIL_LINES + 1 || chars > DETAIL_CHARS + 200 {
            problems.push(format!(
                "{findings} findings in {lines} lines, {chars} characters, \"and N more\": {and_more}"
            ));
        }
    }
    for finding in &card.extension.cramp_cds.findings {
        if finding.evidence.is_empty() {
            problems.push(format!("{} has no evidence in the extension", finding.code));
        }
    }
    problems
}
