//! Card sentences as data (statements.json): each medical statement a card
//! makes, with the sources that say it, or marked as a service decision
//! (a conservative default with no source, listed in
//! docs/clinical-rules.md). Cards name a statement by [`Say`]; start-up
//! checks that every `Say` has its text and that every source it cites
//! supports it (sources.json `supports`).

use serde::Deserialize;

/// Declares the statements the cards make: one variant per statement id.
macro_rules! statements {
    ($($variant:ident => $id:literal,)*) => {
        /// A statement a card makes, by its id in statements.json.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Say {
            $($variant,)*
        }

        impl Say {
            pub const ALL: &'static [Say] = &[$(Say::$variant,)*];

            pub fn id(self) -> &'static str {
                match self {
                    $(Say::$variant => $id,)*
                }
            }
        }
    };
}

statements! {
    Stretching => "stretching",
    Fluids => "fluids",
    HeatOrIce => "heat-or-ice",
    ReviewLowElectrolyte => "review-low-electrolyte",
    MagnesiumOlderAdults => "magnesium-older-adults",
    QuinineNotRecommended => "quinine-not-recommended",
    RedFlags => "red-flags",
    RedFlagCalfPainWithSwelling => "red-flag-calf-pain-with-swelling",
    EvidenceStrengthExplained => "evidence-strength-explained",
    ReviewMedicineNeed => "review-medicine-need",
    DoNotStopAbruptly => "do-not-stop-abruptly",
    BetaBlockerConflicting => "beta-blocker-conflicting",
    BetaBlockerInformationOnly => "beta-blocker-information-only",
    DvtOpening => "dvt-opening",
    DvtChartIsNotAWellsScore => "dvt-chart-is-not-a-wells-score",
    DvtCompleteWellsAtBedside => "dvt-complete-wells-at-bedside",
    DvtTwoPointsUltrasound => "dvt-two-points-ultrasound",
    DvtDDimerNotNegativeUltrasound => "dvt-d-dimer-not-negative-ultrasound",
    DvtAnticoagulatedUltrasound => "dvt-anticoagulated-ultrasound",
    DvtPregnantUltrasound => "dvt-pregnant-ultrasound",
    DvtPregnancyNotScored => "dvt-pregnancy-not-scored",
    QuinineFda => "quinine-fda",
    QuinineAan => "quinine-aan",
    QuinineAlternatives => "quinine-alternatives",
    QuinineMalariaOverride => "quinine-malaria-override",
    QuinineDiscussStopping => "quinine-discuss-stopping",
    // The concise cards (issue 19): the one next step and short lines; the
    // statements above are the guidance pages' full text.
    NextStep => "next-step",
    AndMore => "and-more",
    RiskFactorsSummary => "risk-factors-summary",
    RiskFactorsNextStep => "risk-factors-next-step",
    RiskFactorsNextStepLowElectrolyte => "risk-factors-next-step-low-electrolyte",
    CulpritsNextStep => "culprits-next-step",
    CulpritsNextStepDraft => "culprits-next-step-draft",
    CulpritsNextStepOutdated => "culprits-next-step-outdated",
    BetaBlockerEvidenceShort => "beta-blocker-evidence-short",
    DvtPointsNotAScore => "dvt-points-not-a-score",
    DvtStillToAssess => "dvt-still-to-assess",
    DvtBedsideDecides => "dvt-bedside-decides",
    DvtTwoPointsUltrasoundShort => "dvt-two-points-ultrasound-short",
    DvtPregnancyNotScoredShort => "dvt-pregnancy-not-scored-short",
    QuinineFdaShort => "quinine-fda-short",
    QuinineNextStepOrdered => "quinine-next-step-ordered",
    QuinineNextStepTaking => "quinine-next-step-taking",
    // Every other sentence a card prints (issue 22): summaries, labels,
    // the draft orders' wording, the unchecked-key lines.
    QuinineSummaryOrdered => "quinine-summary-ordered",
    QuinineSummaryTaking => "quinine-summary-taking",
    QuinineOrderedLine => "quinine-ordered-line",
    QuinineTakingLine => "quinine-taking-line",
    QuinineRemoveOrder => "quinine-remove-order",
    QuinineRemoveDraft => "quinine-remove-draft",
    QuinineOverrideMalaria => "quinine-override-malaria",
    QuinineOverrideInformed => "quinine-override-informed",
    CulpritsSummary => "culprits-summary",
    CulpritsSummaryDraft => "culprits-summary-draft",
    CulpritsSummaryOutdated => "culprits-summary-outdated",
    CulpritsSummaryConflicting => "culprits-summary-conflicting",
    DvtPointsKnown => "dvt-points-known",
    DvtLabelPregnancy => "dvt-label-pregnancy",
    DvtLabelPostpartum => "dvt-label-postpartum",
    DvtNoOrders => "dvt-no-orders",
    OrderCreate => "order-create",
    Unchecked => "unchecked",
    UncheckedMedicationStatements => "unchecked-medication-statements",
    UncheckedWorkUp => "unchecked-work-up",
}

impl Say {
    /// The {placeholders} the renderer fills in this statement's text: a
    /// template must use exactly these (start-up checks it), any other
    /// statement none.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Say::NextStep => &["step"],
            Say::AndMore => &["count", "names"],
            Say::RiskFactorsSummary => &["findings"],
            Say::CulpritsSummary | Say::CulpritsSummaryDraft => &["names"],
            Say::QuinineOrderedLine | Say::QuinineTakingLine => &["medicines"],
            Say::QuinineRemoveDraft => &["reference"],
            Say::DvtPointsKnown => &["points"],
            Say::OrderCreate => &["order"],
            Say::Unchecked => &["key", "what"],
            _ => &[],
        }
    }

    /// Summaries cut to length list their names last: the placeholder
    /// must end the text.
    pub fn lists_last(self) -> bool {
        matches!(
            self,
            Say::RiskFactorsSummary | Say::CulpritsSummary | Say::CulpritsSummaryDraft
        )
    }
}

/// The {names} in a text, in order.
pub fn placeholders_in(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .map(|after| after.split_once('}').map_or(after, |(name, _)| name))
}

/// A template with its placeholders filled, in one pass.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .split_once('}')
            .and_then(|(name, tail)| values.iter().find(|(k, _)| *k == name).map(|v| (v.1, tail)))
        {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One entry of statements.json.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statement {
    pub id: String,
    /// The card topic it appears on (for the guidance pages and reviews).
    pub card: String,
    /// Plain text (Markdown-safe: written by us, not by a record).
    pub text: String,
    #[serde(default)]
    pub sources: Vec<super::SourceId>,
    /// A service decision: no source says it; docs/clinical-rules.md lists it.
    #[serde(default)]
    pub decision: bool,
    /// Card layout wording with {placeholders} ("Next step: {step}"): no
    /// medical statement, so neither sources nor a decision; not guidance
    /// text on its own.
    #[serde(default)]
    pub template: bool,
    /// The full statements (same card) this concise card wording condenses:
    /// the guidance page shows those in full, so the story is not lost.
    #[serde(default)]
    pub condenses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatementsFile {
    pub statements: Vec<Statement>,
}
