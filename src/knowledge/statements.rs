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
    pub sources: Vec<String>,
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
